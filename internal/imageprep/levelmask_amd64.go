package imageprep

// levelMaskBlocks sets each word of mask to the bits of the 64 levels it stands for, from levels[0] on, that op
// selects with the byte c (repeated in each byte of rep): see levelMask. It needs only SSE2, which every amd64
// processor has.
//
//go:noescape
func levelMaskBlocks(mask []uint64, levels []byte, rep uint64, op int)
