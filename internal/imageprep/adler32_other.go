//go:build !amd64

package imageprep

// adler32Chunks adds the bytes of p, whose length is a multiple of 16 and at most adlerBlock, to the sums of
// Adler-32, without reducing them.
func adler32Chunks(s1, s2 uint32, p []byte) (uint32, uint32) {
	return adler32Sums(s1, s2, p)
}
