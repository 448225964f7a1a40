package uploadtest

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
)

// Memory bombs: small, valid files whose decoding costs far more memory per pixel than their pixel count suggests.

// ProgressiveJPEG is a complete, decodable progressive JPEG of w x h pixels with comps components (1 gray, 3 YCbCr,
// 4 CMYK with an Adobe marker), all 4:4:4, every block flat grey. It holds a single DC scan of one bit a block, so a
// 6324x6324 CMYK one is about 313 KB, while the decoder keeps every coefficient of every block (4 bytes a sample
// and component) before it builds the pixels.
func ProgressiveJPEG(w, h uint16, comps int) []byte {
	seg := func(b []byte, marker byte, data []byte) []byte {
		b = append(b, 0xff, marker)
		b = binary.BigEndian.AppendUint16(b, uint16(len(data)+2))
		return append(b, data...)
	}
	b := []byte{0xff, 0xd8}
	if comps == 4 {
		// Adobe APP14, transform 0: the four components are CMYK as they stand.
		b = seg(b, 0xee, []byte{'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 0})
	}
	dqt := []byte{0}
	for range 64 {
		dqt = append(dqt, 1)
	}
	b = seg(b, 0xdb, dqt)
	sof := []byte{8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), byte(comps)}
	for i := range comps {
		sof = append(sof, byte(i+1), 0x11, 0)
	}
	b = seg(b, 0xc2, sof)
	// One DC Huffman table with a single code, "0", for category 0: every block's DC difference is zero.
	dht := []byte{0x00, 1}
	dht = append(dht, make([]byte, 15)...)
	b = seg(b, 0xc4, append(dht, 0))
	sos := []byte{byte(comps)}
	for i := range comps {
		sos = append(sos, byte(i+1), 0x00)
	}
	b = seg(b, 0xda, append(sos, 0, 0, 0))
	blocks := ((int(w) + 7) / 8) * ((int(h) + 7) / 8) * comps
	b = append(b, make([]byte, (blocks+7)/8)...)
	return append(b, 0xff, 0xd9)
}

// PNG16 is a w x h 16-bit RGBA PNG of one colour: a few kilobytes that decode to 8 bytes a pixel.
func PNG16(w, h int) []byte {
	m := image.NewNRGBA64(image.Rect(0, 0, w, h))
	c := color.NRGBA64{R: 0xffff, G: 0xffff, B: 0xffff, A: 0xffff}
	for y := range h {
		for x := range w {
			m.SetNRGBA64(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, m); err != nil {
		panic(err) // encoding to memory cannot fail
	}
	return buf.Bytes()
}

// SharedDataZip is a zip whose central directory names the one stored file data under every name in names (all of
// the same length): an archive of a few hundred kilobytes whose image would be decoded once per name by an importer
// that trusts the directory.
func SharedDataZip(data []byte, names ...string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: names[0], Method: zip.Store})
	if err != nil {
		panic(err)
	}
	w.Write(data)
	zw.Close()
	b := buf.Bytes()
	eocd := bytes.LastIndex(b, []byte("PK\x05\x06"))
	cdOff := int(binary.LittleEndian.Uint32(b[eocd+16:]))
	rec := b[cdOff:eocd]
	var cd []byte
	for _, name := range names {
		if len(name) != len(names[0]) {
			panic("uploadtest: SharedDataZip: names of different lengths")
		}
		r := bytes.Clone(rec)
		copy(r[46:], name)
		cd = append(cd, r...)
	}
	end := bytes.Clone(b[eocd:])
	binary.LittleEndian.PutUint16(end[8:], uint16(len(names)))
	binary.LittleEndian.PutUint16(end[10:], uint16(len(names)))
	binary.LittleEndian.PutUint32(end[12:], uint32(len(cd)))
	return append(append(bytes.Clone(b[:cdOff]), cd...), end...)
}
