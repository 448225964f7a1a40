package imageprep

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/adler32"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// flateRef decodes the deflate stream in as pngDecoder.flate does, with compress/flate: exactly size bytes, then the
// end of the stream. n is how many bytes of in compress/flate read.
func flateRef(in []byte, size int) (out []byte, n int, ok bool) {
	src := bytes.NewReader(in)
	r := flate.NewReader(src)
	out = make([]byte, size)
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, 0, false
	}
	var one [1]byte
	if k, err := r.Read(one[:]); k != 0 || err != io.EOF {
		return nil, 0, false
	}
	return out, len(in) - src.Len(), true
}

// checkInflate fails the test if inflate accepts in where compress/flate does not, or decodes it differently. It
// reports whether inflate accepted it.
func checkInflate(t *testing.T, f *inflater, name string, in []byte, size int) bool {
	t.Helper()
	got := make([]byte, size)
	n, ok := f.inflate(got, in)
	// With room past the end, matches are copied a word at a time: the bytes and the answer must be the same.
	roomy := make([]byte, size, size+8+int(size%5))
	if rn, rok := f.inflate(roomy, in); rok != ok || ok && (rn != n || !bytes.Equal(roomy, got)) {
		t.Fatalf("%s: inflate answers otherwise with room past the end of its output", name)
	}
	if !ok {
		return false
	}
	want, wn, wok := flateRef(in, size)
	switch {
	case !wok:
		t.Fatalf("%s: inflate accepted a stream compress/flate refuses", name)
	case !bytes.Equal(got, want):
		t.Fatalf("%s: inflate made other bytes than compress/flate", name)
	case n != wn:
		t.Fatalf("%s: the stream takes %d bytes by inflate, %d by compress/flate", name, n, wn)
	}
	return true
}

// deflate compresses data at level with compress/flate.
func deflate(t *testing.T, data []byte, level int) []byte {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	return buf.Bytes()
}

// TestInflateMatchesCompressFlate checks inflate against compress/flate on streams of every kind of block (stored,
// fixed and dynamic Huffman, with long codes and long distances) and on corrupted, truncated and padded copies of
// them: whatever inflate accepts, compress/flate must decode to the same bytes, reading as much of the input; and
// inflate must accept every intact stream of a kind it handles.
func TestInflateMatchesCompressFlate(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var f inflater
	accepted, rounds := 0, 400
	if testing.Short() {
		rounds = 100
	}
	for r := range rounds {
		size := []int{0, 1, 30, 812, 3000, 70000}[r%6]
		data := make([]byte, size)
		switch r % 4 {
		case 0: // mostly zeros with some ink, an MNIST scanline image
			for i := range data {
				if rng.IntN(5) == 0 {
					data[i] = byte(rng.IntN(256))
				}
			}
		case 1: // random bytes: long codes, stored blocks
			for i := range data {
				data[i] = byte(rng.IntN(256))
			}
		case 2: // repeats at long distances
			for i := range data {
				if i >= 20000 && rng.IntN(50) != 0 {
					data[i] = data[i-20000]
				} else {
					data[i] = byte(rng.IntN(8))
				}
			}
		case 3: // a skewed alphabet: codes of up to 15 bits
			for i := range data {
				data[i] = byte(min(255, int(rng.ExpFloat64()*3)))
			}
		}
		level := []int{flate.HuffmanOnly, flate.NoCompression, flate.BestSpeed, flate.DefaultCompression, flate.BestCompression}[rng.IntN(5)]
		z := deflate(t, data, level)
		name := "stream " + itoa(r)
		if !checkInflate(t, &f, name, z, size) {
			t.Fatalf("%s: inflate declined an intact stream (level %d, %d bytes)", name, level, size)
		}
		accepted++
		// Trailing bytes are not the stream's: the Adler-32 follows it in a PNG.
		checkInflate(t, &f, name+" with trailing bytes", append(append([]byte(nil), z...), 1, 2, 3, 4), size)
		// The wrong size, truncations and corruptions must be declined or match.
		if size > 0 {
			if checkInflate(t, &f, name+" one byte short", z, size-1) {
				t.Fatalf("%s: inflate accepted a stream of more bytes than the image holds", name)
			}
		}
		if checkInflate(t, &f, name+" one byte more", z, size+1) {
			t.Fatalf("%s: inflate accepted a stream of fewer bytes than the image holds", name)
		}
		for range 20 {
			c := append([]byte(nil), z...)
			switch rng.IntN(3) {
			case 0:
				c[rng.IntN(len(c))] ^= 1 << rng.IntN(8)
			case 1:
				c = c[:rng.IntN(len(c))]
			case 2:
				c[rng.IntN(len(c))] = byte(rng.IntN(256))
			}
			checkInflate(t, &f, name+" corrupted", c, size)
		}
	}
	// Hand-made streams: a fixed-Huffman block as zlib and PIL write small images, a degenerate distance code
	// (one code of one bit), an empty stored block, and a reserved block type.
	for _, c := range []struct {
		name string
		in   []byte
		size int
	}{
		{"empty final stored block", []byte{1, 0, 0, 0xff, 0xff}, 0},
		{"reserved block type", []byte{7, 0, 0, 0}, 0},
		{"stored block whose length is not complemented", []byte{1, 1, 0, 0xff, 0xff, 9}, 1},
	} {
		checkInflate(t, &f, c.name, c.in, c.size)
	}
	t.Logf("inflate accepted %d intact streams", accepted)
}

// FuzzInflate checks that whatever inflate accepts compress/flate decodes to the same bytes:
//
//	go test ./internal/imageprep -run '^$' -fuzz FuzzInflate -fuzztime 1m
func FuzzInflate(f *testing.F) {
	for _, level := range []int{flate.HuffmanOnly, flate.NoCompression, flate.BestSpeed, flate.BestCompression} {
		data := bytes.Repeat([]byte("\x00\x00\x00\x10\x80\xff\xfe\x00"), 100)
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, level)
		w.Write(data)
		w.Close()
		f.Add(buf.Bytes(), uint16(len(data)))
	}
	f.Fuzz(func(t *testing.T, in []byte, size uint16) {
		var fl inflater
		checkInflate(t, &fl, "fuzzed stream", in, int(size))
	})
}

// TestInflateTakesRealDigits checks that inflate, not compress/flate, decodes the PNG digits the service sees most:
// the load test's digit (a fixed-Huffman block, as PIL and zlib write small images), the test digit and canvas of
// testdata (dynamic blocks, as Go writes them), and the benchmarks' digits.
func TestInflateTakesRealDigits(t *testing.T) {
	files := map[string][]byte{}
	for _, name := range []string{"../../bench/wrk/digit.png", "testdata/digit.png", "testdata/canvas.png"} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = data
	}
	for _, in := range benchInputs(t) {
		if strings.HasPrefix(in.name, "png") {
			files[in.name] = in.data
		}
	}
	var f inflater
	for name, data := range files {
		z, size := idatOf(t, data)
		if !checkInflate(t, &f, name, z[2:], size) {
			t.Errorf("%s: inflate declined it", name)
		}
	}
}

// idatOf returns the zlib stream of the 8-bit, non-interlaced PNG data and the size of its scanlines.
func idatOf(t testing.TB, data []byte) (z []byte, size int) {
	t.Helper()
	data = data[8:]
	var w, h, bpp int
	for len(data) >= 12 {
		n := int(binary.BigEndian.Uint32(data))
		body := data[8 : 8+n]
		switch string(data[4:8]) {
		case "IHDR":
			w, h = int(binary.BigEndian.Uint32(body)), int(binary.BigEndian.Uint32(body[4:]))
			bpp = map[byte]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[body[9]]
		case "IDAT":
			z = append(z, body...)
		}
		data = data[12+n:]
	}
	return z, h * (1 + w*bpp)
}

// TestAdler32MatchesHashAdler32 checks adler32Of against hash/adler32 on every length up to a few blocks, including
// the worst case for overflow (all bytes 0xff), and the chunks' sums (assembly on amd64) against the pure Go sums.
func TestAdler32MatchesHashAdler32(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, fill := range []func() byte{func() byte { return 0xff }, func() byte { return byte(rng.IntN(256)) }} {
		data := make([]byte, 3*adlerBlock+40)
		for i := range data {
			data[i] = fill()
		}
		for n := range len(data) {
			if got, want := adler32Of(data[:n]), adler32.Checksum(data[:n]); got != want {
				t.Fatalf("adler32Of of %d bytes = %#x; want %#x", n, got, want)
			}
		}
		for n := 0; n <= adlerBlock; n += 16 {
			s1, s2 := uint32(rng.IntN(adlerMod)), uint32(rng.IntN(adlerMod))
			if fill() == 0xff {
				s1, s2 = adlerMod-1, adlerMod-1
			}
			g1, g2 := adler32Chunks(s1, s2, data[n%7:][:n])
			w1, w2 := adler32Sums(s1, s2, data[n%7:][:n])
			if g1 != w1 || g2 != w2 {
				t.Fatalf("adler32Chunks of %d bytes = %d, %d; want %d, %d", n, g1, g2, w1, w2)
			}
		}
	}
}

// TestFixedTablesNeedNoLinks checks what fixedBlock assumes of the fixed codes: every pattern of 9 bits is a whole
// literal/length code, and every pattern of 5 bits a whole distance code, with bits 4 and 5 of each entry clear.
func TestFixedTablesNeedNoLinks(t *testing.T) {
	for i, e := range fixedLitTable {
		if e&huffLink != 0 || e&huffLenMask < 7 || e&huffLenMask > 9 || e&0x30 != 0 {
			t.Fatalf("fixed literal/length entry %d is %#x", i, e)
		}
	}
	for i, e := range fixedDistTable {
		if e&huffLink != 0 || e&huffLenMask != 5 || e&0x30 != 0 {
			t.Fatalf("fixed distance entry %d is %#x", i, e)
		}
	}
}
