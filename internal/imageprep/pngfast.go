package imageprep

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"io"
	"strconv"
)

// The serving hot path sees mostly small 8-bit PNGs (a digit, a canvas drawing). image/png allocates a fresh zlib
// reader and image for each, tens of kilobytes per request, which keeps the garbage collector busy at high request
// rates. pngDecoder handles that common shape (8-bit gray, gray+alpha, RGB, RGBA or paletted, not interlaced, no
// transparency key outside a palette) with an inflater and pixel buffers reused from one image to the next, and produces exactly what
// image/png would (the same image types and pixels; a differential test checks it). Anything else, and anything it
// finds malformed, is left to the standard decoder, which then reports the error its own way.
type pngDecoder struct {
	inflate  inflater      // the whole-buffer inflater (inflate.go)
	inflater io.ReadCloser // compress/flate, for what inflate declines
	src      bytes.Reader
	idat     []byte
	raw      []byte // filtered scanlines
	gray     image.Gray
	nrgba    image.NRGBA
	rgba     image.RGBA
	paletted image.Paletted
	palette  [256]color.Color // backing of paletted.Palette
	palRaw   [256][4]byte     // the colours palette holds, so an unchanged entry is not boxed again
	one      [5]byte          // a byte past the stream's end, then its Adler-32 (a local array read into would escape)
}

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// fastMaxPixels bounds the images the fast path takes, so a Preparer never keeps large buffers alive.
const fastMaxPixels = 1 << 20

// decode returns the image, which lives in d's buffers until the next call, or ok=false when the standard decoder
// must take over.
func (d *pngDecoder) decode(data []byte, maxPixels int) (img image.Image, ok bool) {
	if !bytes.HasPrefix(data, pngSignature) {
		return nil, false
	}
	data = data[len(pngSignature):]
	var w, h, colorType int
	d.idat = d.idat[:0]
	seenIHDR, seenIDAT, idatDone := false, false, false
	seenPLTE, seenTRNS := false, false
	var pal color.Palette
	var idat []byte // the zlib stream
	for {
		if len(data) < 12 {
			return nil, false
		}
		n := binary.BigEndian.Uint32(data)
		if uint64(n) > uint64(len(data)-12) {
			return nil, false
		}
		typ, body := string(data[4:8]), data[8:8+n]
		if crc32.ChecksumIEEE(data[4:8+n]) != binary.BigEndian.Uint32(data[8+n:]) {
			return nil, false
		}
		data = data[12+n:]
		if !seenIHDR && typ != "IHDR" {
			return nil, false
		}
		switch typ {
		case "IHDR":
			if seenIHDR || len(body) != 13 {
				return nil, false
			}
			seenIHDR = true
			w, h = int(binary.BigEndian.Uint32(body)), int(binary.BigEndian.Uint32(body[4:]))
			depth, ct := body[8], body[9]
			if depth != 8 || body[10] != 0 || body[11] != 0 || body[12] != 0 {
				return nil, false // 16-bit, paletted or odd depths, other methods, interlaced
			}
			if w <= 0 || h <= 0 || w > min(maxPixels, fastMaxPixels)/h {
				return nil, false // the standard path reports the size, and large images are not kept in buffers
			}
			colorType = int(ct)
			switch colorType {
			case 0, 2, 3, 4, 6:
			default:
				return nil, false
			}
		case "IDAT":
			if idatDone || colorType == 3 && !seenPLTE {
				return nil, false
			}
			// One IDAT, as small images have, is read where it lies; more are joined in d.idat.
			switch {
			case !seenIDAT:
				idat = body
			case len(d.idat) == 0:
				d.idat = append(append(d.idat, idat...), body...)
				idat = d.idat
			default:
				d.idat = append(d.idat, body...)
				idat = d.idat
			}
			seenIDAT = true
		case "IEND":
			if !seenIDAT {
				return nil, false
			}
			return d.pixels(idat, w, h, colorType, pal)
		case "PLTE":
			// As image/png: the entries are opaque RGBA, and the palette has room for 256, the rest opaque black.
			if colorType != 3 || seenPLTE || seenIDAT || len(body)%3 != 0 || len(body) == 0 || len(body) > 3*256 {
				return nil, false // (a truecolour image's suggested palette, which may be ignored, is left to image/png)
			}
			seenPLTE = true
			for i := range 256 {
				var c [4]byte
				if i < len(body)/3 {
					c = [4]byte{body[3*i], body[3*i+1], body[3*i+2], 0xff}
				} else {
					c = [4]byte{0, 0, 0, 0xff}
				}
				d.setEntry(i, c, false)
			}
			pal = d.palette[:len(body)/3]
		case "tRNS":
			// As image/png: right after PLTE, the first entries get alpha (NRGBA), and the palette grows to cover them.
			if colorType != 3 || !seenPLTE || seenTRNS || seenIDAT || len(body) > 256 {
				return nil, false // transparency keys of the other types are the standard decoder's
			}
			seenTRNS = true
			if len(pal) < len(body) {
				pal = d.palette[:len(body)]
			}
			for i, a := range body {
				c := d.palRaw[i]
				c[3] = a
				d.setEntry(i, c, true)
			}
		default:
			if typ[0]&0x20 == 0 {
				return nil, false // an unknown critical chunk
			}
		}
		if seenIDAT && typ != "IDAT" {
			idatDone = true
		}
	}
}

// setEntry sets palette entry i to the colour c, an RGBA one, or NRGBA when nrgba is set (a tRNS entry), boxing it
// only when it differs from what the entry held.
func (d *pngDecoder) setEntry(i int, c [4]byte, nrgba bool) {
	if d.palette[i] != nil && d.palRaw[i] == c {
		if _, isN := d.palette[i].(color.NRGBA); isN == nrgba {
			return
		}
	}
	d.palRaw[i] = c
	if nrgba {
		d.palette[i] = color.NRGBA{c[0], c[1], c[2], c[3]}
	} else {
		d.palette[i] = color.RGBA{c[0], c[1], c[2], c[3]}
	}
}

// pixels inflates the IDAT stream z, checks its checksum, and unfilters the scanlines into an image; pal is the
// palette of a paletted one.
func (d *pngDecoder) pixels(z []byte, w, h, colorType int, pal color.Palette) (image.Image, bool) {
	var bpp int
	switch colorType {
	case 0, 3:
		bpp = 1
	case 2:
		bpp = 3
	case 4:
		bpp = 2
	default:
		bpp = 4
	}
	stride := w * bpp
	size := h * (1 + stride)
	if len(z) < 6 || z[0]&0x0f != 8 || z[0]>>4 > 7 || (uint16(z[0])<<8|uint16(z[1]))%31 != 0 || z[1]&0x20 != 0 {
		return nil, false
	}
	if cap(d.raw) < size+8 {
		d.raw = make([]byte, size+8) // inflate copies matches a word at a time, up to 8 bytes past the end
	}
	raw := d.raw[:size]
	if n, ok := d.inflate.inflate(raw, z[2:]); ok {
		if sum := z[2+n:]; len(sum) < 4 || binary.BigEndian.Uint32(sum) != adler32Of(raw) {
			return nil, false
		}
	} else if !d.flate(raw, z[2:]) {
		return nil, false
	}
	return d.unfilter(raw, w, h, colorType, bpp, pal)
}

// flate inflates the zlib payload z, after its header, into raw with compress/flate, for the streams inflate leaves
// to it, and checks its checksum.
func (d *pngDecoder) flate(raw, z []byte) bool {
	d.src.Reset(z)
	if d.inflater == nil {
		d.inflater = flate.NewReader(&d.src)
	} else if err := d.inflater.(flate.Resetter).Reset(&d.src, nil); err != nil {
		return false
	}
	if _, err := io.ReadFull(d.inflater, raw); err != nil {
		return false
	}
	// The stream must end here, followed by its Adler-32.
	if n, err := d.inflater.Read(d.one[:]); n != 0 || err != io.EOF {
		return false
	}
	sum := d.one[1:5]
	_, err := io.ReadFull(&d.src, sum)
	return err == nil && binary.BigEndian.Uint32(sum) == adler32Of(raw)
}

// unfilter reverses the filters of the scanlines raw into an image of the colour type.
func (d *pngDecoder) unfilter(raw []byte, w, h, colorType, bpp int, pal color.Palette) (image.Image, bool) {
	stride := w * bpp

	var pix []byte
	var img image.Image
	switch colorType {
	case 0:
		d.gray.Pix = grow(d.gray.Pix, w*h)
		d.gray.Stride, d.gray.Rect = w, image.Rect(0, 0, w, h)
		pix, img = d.gray.Pix, &d.gray
	case 3:
		d.paletted.Pix = grow(d.paletted.Pix, w*h)
		d.paletted.Stride, d.paletted.Rect = w, image.Rect(0, 0, w, h)
		pix, img = d.paletted.Pix, &d.paletted
	case 2:
		d.rgba.Pix = grow(d.rgba.Pix, 4*w*h)
		d.rgba.Stride, d.rgba.Rect = 4*w, image.Rect(0, 0, w, h)
		pix, img = d.rgba.Pix, &d.rgba
	default:
		d.nrgba.Pix = grow(d.nrgba.Pix, 4*w*h)
		d.nrgba.Stride, d.nrgba.Rect = 4*w, image.Rect(0, 0, w, h)
		pix, img = d.nrgba.Pix, &d.nrgba
	}
	var prev []byte // the line above the first is all zeros
	if colorType == 0 || colorType == 6 {
		// The image's pixels are the scanlines' bytes, unfiltered straight into it, one line after the other.
		// None and Up, the filters of most lines of a digit, are taken here without a call (Up as unfilter takes it,
		// eight bytes at a time).
		for rest, dst := raw, pix; len(rest) > stride; rest, dst = rest[1+stride:], dst[stride:] {
			out, cur := dst[:stride], rest[1:1+stride]
			switch {
			case rest[0] == 0:
				copy(out, cur)
			case rest[0] == 2 && len(prev) == stride:
				addUp(out, cur, prev)
			default:
				if !unfilter(rest[0], out, cur, prev, bpp) {
					return nil, false
				}
			}
			prev = out
		}
		return img, true
	}
	ostride := len(pix) / h
	for y := range h {
		line := raw[y*(1+stride)+1 : (y+1)*(1+stride)]
		out := pix[y*ostride : (y+1)*ostride]
		if colorType == 3 {
			// The image's pixels are the scanline's bytes: unfiltered straight into it.
			if !unfilter(raw[y*(1+stride)], out, line, prev, bpp) {
				return nil, false
			}
			prev = out
		} else {
			if !unfilter(raw[y*(1+stride)], line, line, prev, bpp) {
				return nil, false
			}
			prev = line
		}
		switch colorType {
		case 3:
			// As image/png: an index past the palette grows it, over the opaque black entries.
			for _, i := range out {
				if int(i) >= len(pal) {
					pal = d.palette[:int(i)+1]
				}
			}
		case 2:
			for x := range w {
				out[4*x], out[4*x+1], out[4*x+2], out[4*x+3] = line[3*x], line[3*x+1], line[3*x+2], 255
			}
		case 4:
			for x := range w {
				g := line[2*x]
				out[4*x], out[4*x+1], out[4*x+2], out[4*x+3] = g, g, g, line[2*x+1]
			}
		}
	}
	if colorType == 3 {
		d.paletted.Palette = pal
	}
	return img, true
}

// unfilter reverses a scanline's PNG filter, from cur into dst (which may be cur itself: each byte of cur is read
// before its place in dst is written); prev is the unfiltered line above (empty for the first).
func unfilter(filter byte, dst, cur, prev []byte, bpp int) bool {
	if filter > 4 {
		return false
	}
	cur = cur[:len(dst)]
	n := min(bpp, len(dst))
	if len(prev) == 0 {
		// The line above the first is zeros: Up adds nothing, Average adds half the left byte, Paeth the left byte.
		switch filter {
		case 2:
			filter = 0
		case 3:
			copy(dst[:n], cur)
			for i := bpp; i < len(dst); i++ {
				dst[i] = cur[i] + dst[i-bpp]/2
			}
			return true
		case 4:
			filter = 1
		}
	} else {
		prev = prev[:len(dst)]
	}
	switch filter {
	case 0:
		copy(dst, cur)
	case 1:
		if bpp == 1 {
			var a byte // the left neighbour, kept in a register
			for i, x := range cur {
				a += x
				dst[i] = a
			}
			break
		}
		copy(dst[:n], cur)
		for i := bpp; i < len(dst); i++ {
			dst[i] = cur[i] + dst[i-bpp]
		}
	case 2:
		addUp(dst, cur, prev)
	case 3:
		for i := range n {
			dst[i] = cur[i] + prev[i]/2
		}
		for i := bpp; i < len(dst); i++ {
			dst[i] = cur[i] + byte((int(dst[i-bpp])+int(prev[i]))/2)
		}
	case 4:
		paeth(dst, cur, prev, bpp)
	}
	return true
}

// paeth reverses the Paeth filter of cur into dst (which may be cur), prev the line above, all as long as dst. It is
// a function of its own so that its loop keeps its values in registers.
func paeth(dst, cur, prev []byte, bpp int) {
	cur, prev = cur[:len(dst)], prev[:len(dst)]
	// One channel at a time, its left and upper-left neighbours kept in registers; with no left neighbour
	// a = c = 0, and the predictor is the byte above.
	for k := range min(bpp, len(dst)) {
		var a, c int
		for i := k; i < len(dst); i += bpp {
			b := int(prev[i])
			if b|c == 0 {
				// Under zeros (b = c = 0), as under a digit's background, p = a: Paeth picks a without a choice.
				a = (a + int(cur[i])) & 0xff
				dst[i] = byte(a)
				continue
			}
			pa, pb := b-c, a-c
			pc := abs(pa + pb)
			pa, pb = abs(pa), abs(pb)
			// Paeth's choice, a, else b, else c, as conditional moves: its branches would be unpredictable.
			pred := c
			if pb <= pc {
				pred = b
			}
			if pa <= min(pb, pc) {
				pred = a
			}
			a = (pred + int(cur[i])) & 0xff
			dst[i] = byte(a)
			c = b
		}
	}
}

// bytesHigh is the high bit of each byte of a word.
const bytesHigh = 0x8080808080808080

// abs is |x|, without a branch: the signs of Paeth's differences are unpredictable.
func abs(x int) int {
	m := x >> (strconv.IntSize - 1)
	return (x ^ m) - m
}

// addUp reverses the Up filter: dst[i] = cur[i] + prev[i], eight bytes per step, their sums kept from carrying into
// each other (dst may be cur: each word is read before it is written). It is small enough to be inlined.
func addUp(dst, cur, prev []byte) {
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		x, y := binary.LittleEndian.Uint64(cur[i:]), binary.LittleEndian.Uint64(prev[i:])
		binary.LittleEndian.PutUint64(dst[i:], (x&^bytesHigh+y&^bytesHigh)^(x^y)&bytesHigh)
	}
	for ; i < len(dst); i++ {
		dst[i] = cur[i] + prev[i]
	}
}
