package randid

import (
	"encoding/hex"
	"testing"
)

func TestHexIsTwoDigitsPerByteAndDiffersEachCall(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range []int{4, 8, 24} {
		for range 100 {
			id := Hex(n)
			if len(id) != 2*n {
				t.Fatalf("Hex(%d) = %q, %d digits; want %d", n, id, len(id), 2*n)
			}
			if _, err := hex.DecodeString(id); err != nil {
				t.Fatalf("Hex(%d) = %q is not hexadecimal: %v", n, id, err)
			}
			if seen[id] {
				t.Fatalf("Hex(%d) returned %q twice", n, id)
			}
			seen[id] = true
		}
	}
}
