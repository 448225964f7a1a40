package imageprep

import (
	"encoding/binary"
	"math/bits"
)

// compress/flate reads its input a byte at a time through an interface and decodes into a sliding window, which it
// then copies out: on a 28x28 digit, a couple of hundred bytes of deflate, that is most of the time spent decoding
// the PNG. inflate decodes a whole zlib payload held in memory straight into the buffer of the known size the
// scanlines need, with a 64-bit bit buffer and one table lookup per symbol. It is strict: whatever compress/flate
// would refuse, and whatever it is unsure of, it declines (ok = false), and the caller then decodes with
// compress/flate, which decides (TestInflateMatchesCompressFlate, FuzzInflate).

// huffTable decodes one canonical Huffman code: primary is indexed by the next huffPrimaryBits bits of input (least
// significant first, as deflate packs codes reversed); a code longer than that continues in sub. An entry is
// sym<<8 | length for a code, (offset into sub)<<8 | huffLink for a prefix of longer codes, 0 for no code.
type huffTable struct {
	primary [1 << huffPrimaryBits]uint32
	sub     []uint32
	subBits uint // the bits past huffPrimaryBits that index a block of sub: max length - huffPrimaryBits
}

const (
	huffPrimaryBits = 9
	huffLink        = 0x80
	huffLenMask     = 0x0f
)

// init builds the table of the code whose lengths per symbol are lengths. It reports false when compress/flate
// would refuse the code: neither complete nor a single code of one bit. An empty code (all lengths 0) builds an
// empty table, which a block may hold for its distances as long as it never uses it.
func (t *huffTable) init(lengths []uint8) bool {
	var count [16]int
	maxLen := 0
	for _, n := range lengths {
		count[n]++
		maxLen = max(maxLen, int(n))
	}
	count[0] = 0
	t.sub = t.sub[:0]
	if maxLen == 0 {
		clear(t.primary[:])
		return true
	}
	var next [16]int
	code := 0
	for n := 1; n <= maxLen; n++ {
		code = (code + count[n-1]) << 1
		next[n] = code
	}
	// Kraft's sum, as compress/flate computes it: the codes must fill all 2^maxLen patterns.
	total := 0
	for n := 1; n <= maxLen; n++ {
		total += count[n] << (maxLen - n)
	}
	if total != 1<<maxLen && !(total == 1 && maxLen == 1) {
		return false
	}
	if total != 1<<maxLen || maxLen > huffPrimaryBits {
		// A complete code of short codes writes every entry; otherwise some must read as no code, or as no link yet.
		clear(t.primary[:])
	}
	t.subBits = uint(max(maxLen-huffPrimaryBits, 0))
	for sym, n := range lengths {
		if n == 0 {
			continue
		}
		c := next[n]
		next[n]++
		rev := int(bits.Reverse16(uint16(c)) >> (16 - n))
		if int(n) <= huffPrimaryBits {
			for r := rev; r < len(t.primary); r += 1 << n {
				t.primary[r] = uint32(sym)<<8 | uint32(n)
			}
			continue
		}
		p := rev & (1<<huffPrimaryBits - 1)
		if t.primary[p] == 0 {
			t.primary[p] = uint32(len(t.sub))<<8 | huffLink
			t.sub = append(t.sub, make([]uint32, 1<<t.subBits)...)
		}
		block := t.sub[t.primary[p]>>8:][:1<<t.subBits]
		for r := rev >> huffPrimaryBits; r < len(block); r += 1 << (int(n) - huffPrimaryBits) {
			block[r] = uint32(sym)<<8 | uint32(n)
		}
	}
	return true
}

// fixedLit and fixedDist are the codes of deflate's fixed-Huffman blocks (RFC 1951, 3.2.6); the distance code has
// 32 symbols of 5 bits, of which 30 and 31 are refused when they occur, as compress/flate does.
var fixedLit, fixedDist = func() (*huffTable, *huffTable) {
	var lit [288]uint8
	for i := range lit {
		switch {
		case i < 144:
			lit[i] = 8
		case i < 256:
			lit[i] = 9
		case i < 280:
			lit[i] = 7
		default:
			lit[i] = 8
		}
	}
	var dist [32]uint8
	for i := range dist {
		dist[i] = 5
	}
	l, d := new(huffTable), new(huffTable)
	l.init(lit[:])
	d.init(dist[:])
	return l, d
}()

// inflater holds the tables of a dynamic block, reused from one image to the next.
type inflater struct {
	lit, dist, clen huffTable
	lengths         [286 + 30]uint8
}

// bitReader reads deflate's bits, least significant first, from in; past its end it reads zeros, and over counts
// the bytes it made up, so that a stream that needed them is refused.
type bitReader struct {
	in   []byte
	pos  int // next byte of in to load
	over int
	b    uint64
	nb   uint
}

// fill loads bytes until at least 56 bits are buffered.
func (r *bitReader) fill() {
	if r.pos+8 <= len(r.in) {
		r.b |= binary.LittleEndian.Uint64(r.in[r.pos:]) << r.nb
		r.pos += int(63-r.nb) >> 3
		r.nb |= 56
		return
	}
	for r.nb <= 56 {
		if r.pos < len(r.in) {
			r.b |= uint64(r.in[r.pos]) << r.nb
			r.pos++
		} else {
			r.over++
		}
		r.nb += 8
	}
}

// take returns the next n bits (n <= 32, with at least n buffered) and drops them.
func (r *bitReader) take(n uint) uint32 {
	v := uint32(r.b & (1<<n - 1))
	r.b >>= n
	r.nb -= n
	return v
}

// need makes sure n bits (n <= 56) are buffered.
func (r *bitReader) need(n uint) {
	if r.nb < n {
		r.fill()
	}
}

// consumed is how many bytes of in the bits read so far reach into, and whether they are all real input.
func (r *bitReader) consumed() (n int, ok bool) {
	bitsRead := (r.pos+r.over)*8 - int(r.nb)
	return (bitsRead + 7) / 8, r.over == 0 || bitsRead <= 8*len(r.in)
}

// sym decodes one symbol of t; ok is false on a pattern that is no code. At least 15 bits must be buffered.
func (r *bitReader) sym(t *huffTable) (sym int, ok bool) {
	e := t.primary[r.b&(1<<huffPrimaryBits-1)]
	if e&huffLink != 0 {
		e = t.sub[int(e>>8)+int(r.b>>huffPrimaryBits)&(1<<t.subBits-1)]
	}
	n := uint(e & huffLenMask)
	if n == 0 {
		return 0, false
	}
	r.b >>= n
	r.nb -= n
	return int(e >> 8), true
}

// inflate decodes the raw deflate stream in (a zlib payload after its 2-byte header) into out, which it must fill
// exactly. It returns how many bytes of in the stream takes, up to the end of its last byte; ok is false when
// compress/flate would refuse the stream, when the stream makes more or less than len(out) bytes, or when it is
// something inflate leaves to compress/flate.
func (f *inflater) inflate(out, in []byte) (n int, ok bool) {
	r := bitReader{in: in}
	pos := 0
	for {
		r.need(3)
		final := r.take(1) == 1
		switch r.take(2) {
		case 0:
			// Stored: from the next byte boundary, LEN and its complement, then LEN bytes.
			r.take(r.nb & 7)
			start, real := r.consumed()
			if !real || start+4 > len(in) {
				return 0, false
			}
			size := int(binary.LittleEndian.Uint16(in[start:]))
			if ^uint16(size) != binary.LittleEndian.Uint16(in[start+2:]) || start+4+size > len(in) || pos+size > len(out) {
				return 0, false
			}
			copy(out[pos:], in[start+4:start+4+size])
			pos += size
			r = bitReader{in: in, pos: start + 4 + size}
		case 1:
			var good bool
			if pos, good = r.huffmanBlock(out, pos, fixedLit, fixedDist); !good {
				return 0, false
			}
		case 2:
			if !f.readTables(&r) {
				return 0, false
			}
			var good bool
			if pos, good = r.huffmanBlock(out, pos, &f.lit, &f.dist); !good {
				return 0, false
			}
		default:
			return 0, false
		}
		if n, real := r.consumed(); !real {
			return 0, false
		} else if final {
			return n, pos == len(out)
		}
	}
}

// codeOrder is the order of the code length code's lengths in a dynamic block's header.
var codeOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// readTables reads a dynamic block's codes into f.lit and f.dist, with compress/flate's checks.
func (f *inflater) readTables(r *bitReader) bool {
	r.need(14)
	nlit := int(r.take(5)) + 257
	ndist := int(r.take(5)) + 1
	nclen := int(r.take(4)) + 4
	if nlit > 286 || ndist > 30 {
		return false
	}
	var clen [19]uint8
	for i := range nclen {
		r.need(3)
		clen[codeOrder[i]] = uint8(r.take(3))
	}
	if !f.clen.init(clen[:]) {
		return false
	}
	lengths := f.lengths[:nlit+ndist]
	for i := 0; i < len(lengths); {
		r.need(15 + 7)
		x, ok := r.sym(&f.clen)
		if !ok {
			return false
		}
		if x < 16 {
			lengths[i] = uint8(x)
			i++
			continue
		}
		var rep int
		var v uint8
		switch x {
		case 16:
			if i == 0 {
				return false
			}
			rep, v = 3+int(r.take(2)), lengths[i-1]
		case 17:
			rep = 3 + int(r.take(3))
		default:
			rep = 11 + int(r.take(7))
		}
		if i+rep > len(lengths) {
			return false
		}
		for range rep {
			lengths[i] = v
			i++
		}
	}
	return f.lit.init(lengths[:nlit]) && f.dist.init(lengths[nlit:])
}

// Length and distance codes: base values and extra bits (RFC 1951, 3.2.5).
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// huffmanBlock decodes the symbols of a block coded with lit and dist into out from pos, up to its end-of-block
// symbol, and returns the new pos. The bit buffer lives in locals meanwhile, so that it stays in registers.
func (r *bitReader) huffmanBlock(out []byte, pos int, lit, dist *huffTable) (int, bool) {
	b, nb, in, ip := r.b, r.nb, r.in, r.pos
	for {
		if nb < 15+5+15+13 { // a length, its extra bits, a distance and its extra bits
			if ip+8 <= len(in) {
				b |= binary.LittleEndian.Uint64(in[ip:]) << nb
				ip += int(63-nb) >> 3
				nb |= 56
			} else {
				r.b, r.nb, r.pos = b, nb, ip
				r.fill()
				b, nb, ip = r.b, r.nb, r.pos
			}
		}
		e := lit.primary[b&(1<<huffPrimaryBits-1)]
		if e&huffLink != 0 {
			e = lit.sub[int(e>>8)+int(b>>huffPrimaryBits)&(1<<lit.subBits-1)]
		}
		n := uint(e & huffLenMask)
		if n == 0 {
			return 0, false
		}
		b >>= n
		nb -= n
		v := int(e >> 8)
		if v < 256 {
			if pos >= len(out) {
				return 0, false
			}
			out[pos] = byte(v)
			pos++
			continue
		}
		if v == 256 {
			r.b, r.nb, r.pos = b, nb, ip
			return pos, true
		}
		v -= 257
		if v >= len(lengthBase) {
			return 0, false // 286 and 287
		}
		x := uint(lengthExtra[v])
		length := int(lengthBase[v]) + int(b&(1<<x-1))
		b >>= x
		nb -= x
		e = dist.primary[b&(1<<huffPrimaryBits-1)]
		if e&huffLink != 0 {
			e = dist.sub[int(e>>8)+int(b>>huffPrimaryBits)&(1<<dist.subBits-1)]
		}
		n = uint(e & huffLenMask)
		d := int(e >> 8)
		if n == 0 || d >= len(distBase) {
			return 0, false
		}
		b >>= n
		nb -= n
		x = uint(distExtra[d])
		d = int(distBase[d]) + int(b&(1<<x-1))
		b >>= x
		nb -= x
		if d > pos || length > len(out)-pos {
			return 0, false
		}
		if length <= 16 {
			// Most matches of a small image are short: a loop costs less than a call, and repeats overlaps.
			src, dst := out[pos-d:pos-d+length], out[pos:pos+length]
			for i := range dst {
				dst[i] = src[i]
			}
		} else {
			// An overlapping copy repeats the last d bytes: each copy doubles what the next can take.
			for k := 0; k < length; {
				k += copy(out[pos+k:pos+length], out[pos-d:pos+k])
			}
		}
		pos += length
	}
}

// adler32Of is hash/adler32.Checksum, summing eight bytes per step: the eight updates of s2 add 8*s1 and the bytes
// weighted 8 to 1, and cut the chain of dependent additions by eight.
func adler32Of(p []byte) uint32 {
	const mod, nmax = 65521, 5552 // nmax bytes keep s2 within 32 bits (zlib's bound), and is a multiple of 8
	s1, s2 := uint32(1), uint32(0)
	for len(p) > 0 {
		q := p[:min(len(p), nmax)]
		p = p[len(q):]
		for ; len(q) >= 8; q = q[8:] {
			c := q[:8:8]
			s2 += 8*s1 + 8*uint32(c[0]) + 7*uint32(c[1]) + 6*uint32(c[2]) + 5*uint32(c[3]) + 4*uint32(c[4]) +
				3*uint32(c[5]) + 2*uint32(c[6]) + uint32(c[7])
			s1 += uint32(c[0]) + uint32(c[1]) + uint32(c[2]) + uint32(c[3]) + uint32(c[4]) + uint32(c[5]) +
				uint32(c[6]) + uint32(c[7])
		}
		for _, c := range q {
			s1 += uint32(c)
			s2 += s1
		}
		s1 %= mod
		s2 %= mod
	}
	return s2<<16 | s1
}
