// Package randid makes random identifiers and tokens: job ids, data set ids, request ids, a generated admin token.
// They come from crypto/rand, so they cannot be guessed from earlier ones, and need no seed or shared state.
package randid

import (
	"crypto/rand"
	"encoding/hex"
)

// Hex returns n random bytes as 2n lower-case hexadecimal digits.
func Hex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails: crypto/rand.Read cannot return an error since Go 1.24
	return hex.EncodeToString(b)
}
