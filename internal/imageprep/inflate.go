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
// significant first, as deflate packs codes reversed); a code longer than that continues in a block of sub, sized
// for the longest code under that prefix, as zlib does. An entry holds what the symbol means (see below) and,
// in its low four bits, the code's length; 0 is no code.
type huffTable struct {
	primary [1 << huffPrimaryBits]uint32
	sub     []uint32
}

// An entry of a huffTable is value<<16 | extra<<12 | kind | code length, where kind is one of the flags below (or
// none, for a symbol that is refused when it occurs, such as literal/length codes 286 and 287), value is a literal's
// byte, a length's or distance's base, or the offset of a link's block in sub, and extra is how many extra bits
// follow the code (a link's: how many bits past the primary ones index its block). Decoding a length or a distance
// thus needs no other table.
const (
	huffPrimaryBits = 9
	huffLenMask     = 0x0f
	huffExtraShift  = 12
	huffLit         = 0x100 // a literal byte (or, in the code length code, a symbol)
	huffLen         = 0x200 // a length, or in a distance code, a distance
	huffEnd         = 0x400 // end of block
	huffLink        = 0x800 // a prefix of longer codes
)

// Length and distance codes: base values and extra bits (RFC 1951, 3.2.5).
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// litMeaning, distMeaning and clenMeaning are the entries of each alphabet's symbols, without the code length.
var litMeaning, distMeaning, clenMeaning = func() (lit [288]uint32, dist [32]uint32, clen [19]uint32) {
	for i := range 256 {
		lit[i] = uint32(i)<<16 | huffLit
	}
	lit[256] = huffEnd
	for i := range lengthBase {
		lit[257+i] = uint32(lengthBase[i])<<16 | uint32(lengthExtra[i])<<huffExtraShift | huffLen
	}
	for i := range distBase {
		dist[i] = uint32(distBase[i])<<16 | uint32(distExtra[i])<<huffExtraShift | huffLen
	}
	for i := range clen {
		clen[i] = uint32(i)<<16 | huffLit
	}
	return
}()

// init builds the table of the code whose lengths per symbol are lengths, the symbols meaning what meaning says. It
// reports false when compress/flate would refuse the code: neither complete nor a single code of one bit. An empty
// code (all lengths 0) builds an empty table, which a block may hold for its distances as long as it never uses it.
func (t *huffTable) init(lengths []uint8, meaning []uint32) bool {
	// The lengths are counted, and the symbols sorted below, in two chains, one per half of the symbols: in either,
	// a run of symbols of one length makes each step wait for the one before it, through memory.
	half := len(lengths) / 2
	first, second := lengths[:half], lengths[half:]
	var count, inFirst, inSecond [16]uint16
	for i, n := range first {
		inFirst[n&15]++
		inSecond[second[i]&15]++
	}
	if len(second) > half {
		inSecond[second[half]&15]++
	}
	for n := range count {
		count[n] = inFirst[n] + inSecond[n]
	}
	count[0] = 0
	maxLen := 15
	for maxLen > 0 && count[maxLen] == 0 {
		maxLen--
	}
	t.sub = t.sub[:0]
	// Kraft's sum, as compress/flate computes it: the codes must fill all 2^maxLen patterns.
	total := 0
	for n := 1; n <= maxLen; n++ {
		total += int(count[n]) << (maxLen - n)
	}
	if total != 1<<maxLen {
		if total == 1 && maxLen == 1 || maxLen == 0 {
			// The code of one symbol (or none) leaves patterns that are no code.
			clear(t.primary[:])
			for sym, n := range lengths {
				if n == 1 {
					t.primary[0] = meaning[sym] | 1 // the code 0; the patterns of a 1 are no code
					for r := 2; r < len(t.primary); r *= 2 {
						copy(t.primary[r:2*r], t.primary[:r])
					}
				}
			}
			return true
		}
		return false
	}
	// The symbols in canonical order: by length, then by symbol; those of no code follow, sorted without a branch
	// that would be hard to predict.
	var offset [16]uint16
	for n := 1; n < 15; n++ {
		offset[n+1] = offset[n] + count[n]
	}
	offset[0] = offset[15] + count[15]
	var later [16]uint16 // where the second half's symbols of each length go, after the first half's
	for n := range later {
		later[n] = offset[n] + inFirst[n]
	}
	var sorted [288]uint16
	for i, n := range first {
		sorted[offset[n&15]] = uint16(i)
		offset[n&15]++
		m := second[i] & 15
		sorted[later[m]] = uint16(half + i)
		later[m]++
	}
	if len(second) > half {
		sorted[later[second[half]&15]] = uint16(2 * half)
	}
	// Codes up to the primary length, shortest first: a code of n bits goes in the first 2^n entries, at its
	// reversed pattern; then those entries are repeated to fill 2^(n+1), as the next bit does not matter for them.
	// The entries left are those under longer codes, written later. A complete code fills every entry.
	code, i := 0, 0
	for n := 1; n <= huffPrimaryBits; n++ {
		for range count[n] {
			rev := bits.Reverse16(uint16(code)) >> (16 - n)
			t.primary[rev&(1<<huffPrimaryBits-1)] = meaning[sorted[i]] | uint32(n)
			code++
			i++
		}
		code <<= 1
		if n < huffPrimaryBits {
			copy(t.primary[1<<n:2<<n], t.primary[:1<<n])
		}
	}
	// Longer codes: the codes under one primary prefix are consecutive in canonical order, and get a block as
	// large as the longest of them needs (zlib's inflate_table).
	prefix := -1
	var block []uint32
	left := count
	for n := huffPrimaryBits + 1; n <= maxLen; n++ {
		for range count[n] {
			rev := int(bits.Reverse16(uint16(code)) >> (16 - n))
			if p := rev & (1<<huffPrimaryBits - 1); p != prefix {
				prefix = p
				sb := n - huffPrimaryBits
				room := 1 << sb
				for sb+huffPrimaryBits < maxLen {
					room -= int(left[sb+huffPrimaryBits])
					if room <= 0 {
						break
					}
					sb++
					room <<= 1
				}
				off := len(t.sub)
				t.sub = append(t.sub, make([]uint32, 1<<sb)...)
				block = t.sub[off:]
				t.primary[p] = uint32(off)<<16 | uint32(sb)<<huffExtraShift | huffLink
			}
			e := meaning[sorted[i]] | uint32(n)
			for r := rev >> huffPrimaryBits; r < len(block); r += 1 << (n - huffPrimaryBits) {
				block[r] = e
			}
			left[n]--
			code++
			i++
		}
		code <<= 1
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
	l.init(lit[:], litMeaning[:])
	d.init(dist[:], distMeaning[:])
	return l, d
}()

// fixedLitTable and fixedDistTable are the entries of the fixed codes laid out for fixedBlock: every code of the
// literal/length code is at most 9 bits long, so none is a link; the distance code's are 5 bits.
var fixedLitTable, fixedDistTable = func() (lit [1 << huffPrimaryBits]uint32, dist [32]uint32) {
	copy(lit[:], fixedLit.primary[:])
	copy(dist[:], fixedDist.primary[:32])
	return
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
		e = t.sub[int(e>>16)+int(r.b>>huffPrimaryBits)&(1<<(e>>huffExtraShift&15)-1)]
	}
	n := uint(e & huffLenMask)
	if n == 0 {
		return 0, false
	}
	r.b >>= n
	r.nb -= n
	return int(e >> 16), true
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
			if pos, good = r.fixedBlock(out, pos); !good {
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
	if !f.clen.init(clen[:], clenMeaning[:]) {
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
	return f.lit.init(lengths[:nlit], litMeaning[:]) && f.dist.init(lengths[nlit:], distMeaning[:])
}

// huffmanBlock decodes the symbols of a block coded with lit and dist into out from pos, up to its end-of-block
// symbol, and returns the new pos. The bit buffer lives in locals meanwhile, so that it stays in registers. A match
// is copied eight bytes at a time when out has the capacity for up to 8 bytes past its end: the bytes written past
// it are rewritten by what follows, or lie past len(out).
func (r *bitReader) huffmanBlock(out []byte, pos int, lit, dist *huffTable) (int, bool) {
	b, nb, in, ip := r.b, r.nb, r.in, r.pos
	room := out[:cap(out)]
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
			e = lit.sub[int(e>>16)+int(b>>huffPrimaryBits)&(1<<(e>>huffExtraShift&15)-1)]
		}
		// Bits 4 and 5 of an entry are 0: a shift by e&63 is the hardware's own, with no instruction for the mask.
		b >>= uint(e) & 63
		nb -= uint(e & huffLenMask)
		if e&huffLit != 0 {
			if pos >= len(out) {
				return 0, false
			}
			out[pos] = byte(e >> 16)
			pos++
			continue
		}
		if e&huffLen == 0 {
			if e&huffEnd != 0 {
				r.b, r.nb, r.pos = b, nb, ip
				return pos, true
			}
			return 0, false // no code, or 286 and 287
		}
		x := uint(e >> huffExtraShift & 15)
		length := int(e>>16) + int(b&(1<<x-1))
		b >>= x
		nb -= x
		e = dist.primary[b&(1<<huffPrimaryBits-1)]
		if e&huffLink != 0 {
			e = dist.sub[int(e>>16)+int(b>>huffPrimaryBits)&(1<<(e>>huffExtraShift&15)-1)]
		}
		if e&huffLen == 0 {
			return 0, false // no code, or 30 and 31
		}
		b >>= uint(e) & 63
		nb -= uint(e & huffLenMask)
		x = uint(e >> huffExtraShift & 15)
		d := int(e>>16) + int(b&(1<<x-1))
		b >>= x
		nb -= x
		if d > pos || length > len(out)-pos {
			return 0, false
		}
		end := pos + length
		switch {
		case end+8 > len(room):
			for k := pos; k < end; k++ {
				out[k] = out[k-d]
			}
		case d >= 8:
			// Each word read lies before the bytes written so far, or among them.
			for k := pos; k < end; k += 8 {
				binary.LittleEndian.PutUint64(room[k:], binary.LittleEndian.Uint64(room[k-d:]))
			}
		case d == 1:
			// A run of one byte, as the background of a digit is.
			v := uint64(room[pos-1]) * 0x0101010101010101
			for k := pos; k < end; k += 8 {
				binary.LittleEndian.PutUint64(room[k:], v)
			}
		default:
			for k := pos; k < end; k++ {
				room[k] = room[k-d]
			}
		}
		pos = end
	}
}

// fixedBlock is huffmanBlock (see it for the bit buffer and the match copy) for a block of the fixed codes (60 of 64
// small digits as Go encodes them), with their tables at fixed addresses and no links to follow, which leaves the loop
// the registers it needs for the bit buffer and the output.
func (r *bitReader) fixedBlock(out []byte, pos int) (int, bool) {
	b, nb, in, ip := r.b, r.nb, r.in, r.pos
	room := out[:cap(out)]
	for {
		if nb < 9+5+5+13 { // a fixed code's longest length, its extra bits, a distance and its extra bits
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
		e := fixedLitTable[b&(1<<huffPrimaryBits-1)]
		// Bits 4 and 5 of an entry are 0: a shift by e&63 is the hardware's own, with no instruction for the mask.
		b >>= uint(e) & 63
		nb -= uint(e & huffLenMask)
		if e&huffLit != 0 {
			if pos >= len(out) {
				return 0, false
			}
			out[pos] = byte(e >> 16)
			pos++
			continue
		}
		if e&huffLen == 0 {
			if e&huffEnd != 0 {
				r.b, r.nb, r.pos = b, nb, ip
				return pos, true
			}
			return 0, false // no code, or 286 and 287
		}
		x := uint(e >> huffExtraShift & 15)
		length := int(e>>16) + int(b&(1<<x-1))
		b >>= x
		nb -= x
		e = fixedDistTable[b&31]
		if e&huffLen == 0 {
			return 0, false // no code, or 30 and 31
		}
		b >>= uint(e) & 63
		nb -= uint(e & huffLenMask)
		x = uint(e >> huffExtraShift & 15)
		d := int(e>>16) + int(b&(1<<x-1))
		b >>= x
		nb -= x
		if d > pos || length > len(out)-pos {
			return 0, false
		}
		// huffmanBlock's copy, written out again: as a function call it spills the bit buffer, and a digit's
		// decoding took 15% longer.
		end := pos + length
		switch {
		case end+8 > len(room):
			for k := pos; k < end; k++ {
				out[k] = out[k-d]
			}
		case d >= 8:
			// Each word read lies before the bytes written so far, or among them.
			for k := pos; k < end; k += 8 {
				binary.LittleEndian.PutUint64(room[k:], binary.LittleEndian.Uint64(room[k-d:]))
			}
		case d == 1:
			// A run of one byte, as the background of a digit is.
			v := uint64(room[pos-1]) * 0x0101010101010101
			for k := pos; k < end; k += 8 {
				binary.LittleEndian.PutUint64(room[k:], v)
			}
		default:
			for k := pos; k < end; k++ {
				room[k] = room[k-d]
			}
		}
		pos = end
	}
}

// adlerMod is Adler-32's modulus, and adlerBlock the most bytes whose sums stay within 32 bits before they are
// reduced (zlib's NMAX, 5552, rounded down to whole 16-byte chunks).
const adlerMod, adlerBlock = 65521, 5552 &^ 15

// adler32Of is hash/adler32.Checksum, with the 16-byte chunks summed by adler32Chunks.
func adler32Of(p []byte) uint32 {
	s1, s2 := uint32(1), uint32(0)
	for len(p) > 0 {
		q := p[:min(len(p), adlerBlock)]
		p = p[len(q):]
		n := len(q) &^ 15
		s1, s2 = adler32Chunks(s1, s2, q[:n])
		s1, s2 = adler32Sums(s1, s2, q[n:])
		s1 %= adlerMod
		s2 %= adlerMod
	}
	return s2<<16 | s1
}

// adler32Sums adds the bytes of p, at most adlerBlock, to the sums of Adler-32 without reducing them, eight bytes
// per step: the eight updates of s2 add 8*s1 and the bytes weighted 8 to 1, and cut the chain of dependent
// additions by eight.
func adler32Sums(s1, s2 uint32, p []byte) (uint32, uint32) {
	for ; len(p) >= 8; p = p[8:] {
		c := p[:8:8]
		s2 += 8*s1 + 8*uint32(c[0]) + 7*uint32(c[1]) + 6*uint32(c[2]) + 5*uint32(c[3]) + 4*uint32(c[4]) +
			3*uint32(c[5]) + 2*uint32(c[6]) + uint32(c[7])
		s1 += uint32(c[0]) + uint32(c[1]) + uint32(c[2]) + uint32(c[3]) + uint32(c[4]) + uint32(c[5]) +
			uint32(c[6]) + uint32(c[7])
	}
	for _, c := range p {
		s1 += uint32(c)
		s2 += s1
	}
	return s1, s2
}
