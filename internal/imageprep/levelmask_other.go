//go:build !amd64

package imageprep

// levelMaskBlocks sets each word of mask to the bits of the 64 levels it stands for, from levels[0] on, that op
// selects with the byte c (repeated in each byte of rep): see levelMask.
func levelMaskBlocks(mask []uint64, levels []byte, rep uint64, op int) {
	levelMaskTail(mask, levels[:64*len(mask)], byte(rep), op)
}
