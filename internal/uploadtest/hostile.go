package uploadtest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
)

// Hostile uploads: files whose headers lie about their size, the raw material of decompression bombs. Each is valid
// enough for a decoder to read its header and believe it.

// PNGChunk returns one PNG chunk with its CRC.
func PNGChunk(typ string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, uint32(len(data)))
	b.WriteString(typ)
	b.Write(data)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	return b.Bytes()
}

// PNGHeader is a PNG signature and a valid IHDR claiming w x h 8-bit RGBA pixels, followed by an empty IDAT and IEND.
func PNGHeader(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 6, 0, 0, 0)
	b := []byte("\x89PNG\r\n\x1a\n")
	b = append(b, PNGChunk("IHDR", ihdr)...)
	b = append(b, PNGChunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})...)
	return append(b, PNGChunk("IEND", nil)...)
}

// GIFScreen is a GIF whose logical screen is w x h, with one 1x1 frame.
func GIFScreen(w, h uint16) []byte {
	b := []byte("GIF89a")
	b = binary.LittleEndian.AppendUint16(b, w)
	b = binary.LittleEndian.AppendUint16(b, h)
	b = append(b, 0x80, 0, 0, 0, 0, 0, 255, 255, 255) // global colour table of 2 entries
	b = append(b, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0)    // image descriptor, 1x1 at (0, 0)
	b = append(b, 2, 2, 0x44, 0x01, 0)                // LZW minimum code size 2, one data block
	return append(b, 0x3b)
}

// TIFFHeader is a little-endian TIFF whose one IFD claims w x h 8-bit gray pixels in a single strip of count bytes.
func TIFFHeader(w, h, count uint32) []byte {
	type entry struct {
		tag, typ uint16
		val      uint32
	}
	entries := []entry{
		{256, 4, w},     // ImageWidth
		{257, 4, h},     // ImageLength
		{258, 3, 8},     // BitsPerSample
		{259, 3, 1},     // Compression: none
		{262, 3, 1},     // PhotometricInterpretation: BlackIsZero
		{273, 4, 8},     // StripOffsets
		{277, 3, 1},     // SamplesPerPixel
		{278, 4, h},     // RowsPerStrip
		{279, 4, count}, // StripByteCounts
	}
	b := []byte("II*\x00")
	b = binary.LittleEndian.AppendUint32(b, 8)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(entries)))
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.typ)
		b = binary.LittleEndian.AppendUint32(b, 1)
		b = binary.LittleEndian.AppendUint32(b, e.val)
	}
	return binary.LittleEndian.AppendUint32(b, 0)
}

// BMPHeader is a 24-bit BMP header claiming w x h pixels and no pixel data.
func BMPHeader(w, h int32) []byte {
	b := []byte("BM")
	b = binary.LittleEndian.AppendUint32(b, 54)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 54)
	b = binary.LittleEndian.AppendUint32(b, 40)
	b = binary.LittleEndian.AppendUint32(b, uint32(w))
	b = binary.LittleEndian.AppendUint32(b, uint32(h))
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, 24)
	return append(b, make([]byte, 24)...)
}

// JPEGHeader is a JPEG start, a JFIF marker and a baseline frame header claiming w x h gray pixels.
func JPEGHeader(w, h uint16) []byte {
	b := []byte{0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0}
	b = append(b, 0xff, 0xc0, 0, 11, 8)
	b = binary.BigEndian.AppendUint16(b, h)
	b = binary.BigEndian.AppendUint16(b, w)
	return append(b, 1, 1, 0x11, 0, 0xff, 0xd9)
}

// WebPCanvas is a WebP VP8X header claiming a w x h canvas.
func WebPCanvas(w, h uint32) []byte {
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, 4+8+10)
	b = append(b, "WEBPVP8X"...)
	b = binary.LittleEndian.AppendUint32(b, 10)
	b = append(b, 0, 0, 0, 0)
	b = append(b, byte(w-1), byte((w-1)>>8), byte((w-1)>>16))
	return append(b, byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
}

// ManyScans is a JPEG made of a header and thousands of empty start-of-scan markers.
func ManyScans() []byte {
	b := JPEGHeader(4000, 4000)
	b = b[:len(b)-2]
	for range 5000 {
		b = append(b, 0xff, 0xda, 0, 8, 1, 1, 0, 0, 63, 0)
	}
	return append(b, 0xff, 0xd9)
}

// ManyFrames is a small GIF of n frames, of which Decode must read only the first.
func ManyFrames(n int) []byte {
	g := &gif.GIF{}
	pal := color.Palette{color.Black, color.White}
	for range n {
		g.Image = append(g.Image, image.NewPaletted(image.Rect(0, 0, 16, 16), pal))
		g.Delay = append(g.Delay, 0)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		panic(err)
	}
	return b.Bytes()
}
