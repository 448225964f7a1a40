package imageprep

// adler32Chunks adds the bytes of p, whose length is a multiple of 16 and at most adlerBlock, to the sums of
// Adler-32, without reducing them: at most adlerBlock bytes keep them within 32 bits. It needs only SSE2, which every
// amd64 processor has.
//
//go:noescape
func adler32Chunks(s1, s2 uint32, p []byte) (uint32, uint32)
