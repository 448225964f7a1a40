package model

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"time"
)

// NewVersion names a model version after its creation time and a digest of its weights, e.g.
// "20261127T101500Z-3f2a": versions sort by time and two models made in the same second still differ.
func NewVersion(created time.Time, params []float32) string {
	h := sha256.New()
	var buf [4096]byte // hashed a block at a time: a call per weight made the digest the slowest part of an import
	b := buf[:0]
	for _, p := range params {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(p))
		if len(b) == len(buf) {
			h.Write(b)
			b = b[:0]
		}
	}
	h.Write(b)
	return created.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(h.Sum(nil)[:2])
}
