//go:build !race

package imageprep

const raceEnabled = false
