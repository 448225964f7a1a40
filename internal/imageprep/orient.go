package imageprep

import (
	"encoding/binary"
	"image"
	"image/color"
)

// Phones store a photo's pixels as the sensor saw them and record in its EXIF Orientation tag how to turn them for
// display; a portrait digit photographed upright usually arrives lying on its side with Orientation 6. The image
// decoders ignore the tag, so Decode applies it.

// jpegOrientation returns the EXIF Orientation of a JPEG (1 to 8), or 1 when it has none or it cannot be read. It
// walks the marker segments before the first scan, where APP1 holds the EXIF block.
func jpegOrientation(data []byte) int {
	if len(data) < 4 || data[0] != 0xff || data[1] != 0xd8 {
		return 1
	}
	for i := 2; i+4 <= len(data); {
		if data[i] != 0xff {
			return 1
		}
		marker := data[i+1]
		switch {
		case marker == 0xff: // fill byte
			i++
			continue
		case marker == 0x01 || marker >= 0xd0 && marker <= 0xd8: // markers without a length
			i += 2
			continue
		case marker == 0xda || marker == 0xd9: // start of scan, end of image: no metadata after this
			return 1
		}
		size := int(binary.BigEndian.Uint16(data[i+2:]))
		if size < 2 || i+2+size > len(data) {
			return 1
		}
		if seg := data[i+4 : i+2+size]; marker == 0xe1 && len(seg) > 6 && string(seg[:6]) == "Exif\x00\x00" {
			return tiffOrientation(seg[6:])
		}
		i += 2 + size
	}
	return 1
}

// tiffOrientation reads tag 0x0112 (Orientation, one SHORT) from the first IFD of a TIFF structure, as EXIF embeds
// one; 1 when it is missing or malformed.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	if bo.Uint16(t[2:]) != 42 {
		return 1
	}
	off := uint64(bo.Uint32(t[4:]))
	if off < 8 || off+2 > uint64(len(t)) {
		return 1
	}
	n := uint64(bo.Uint16(t[off:]))
	for k := range n {
		e := off + 2 + 12*k
		if e+12 > uint64(len(t)) {
			return 1
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		if typ, count := bo.Uint16(t[e+2:]), bo.Uint32(t[e+4:]); typ != 3 || count != 1 {
			return 1
		}
		if o := int(bo.Uint16(t[e+8:])); o >= 1 && o <= 8 {
			return o
		}
		return 1
	}
	return 1
}

// orient returns img turned as EXIF orientation o asks (2 to 8; anything else returns img itself), as a gray image:
// a JPEG has no alpha and only luminance matters downstream. A YCbCr photo gives its Y plane, which is the luminance
// the preprocessing would read from it anyway; a CMYK one its converted luminance.
func orient(img image.Image, o int) image.Image {
	if o < 2 || o > 8 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	// from gives the source pixel of output pixel (x, y), relative to the bounds' corner.
	from := func(x, y int) (int, int) {
		switch o {
		case 2: // mirrored
			return w - 1 - x, y
		case 3: // turned 180 degrees
			return w - 1 - x, h - 1 - y
		case 4: // flipped upside down
			return x, h - 1 - y
		case 5: // transposed
			return y, x
		case 6: // to be turned 90 degrees clockwise
			return y, h - 1 - x
		case 7: // transversed
			return w - 1 - y, h - 1 - x
		default: // 8: to be turned 90 degrees anticlockwise
			return w - 1 - y, x
		}
	}
	out := image.NewGray(image.Rect(0, 0, ow, oh))
	// plane is the source's 8-bit luminance and where each pixel of it lies, when it has one.
	var plane []byte
	var offset func(x, y int) int
	switch m := img.(type) {
	case *image.YCbCr:
		plane, offset = m.Y, m.YOffset
	case *image.Gray:
		plane, offset = m.Pix, m.PixOffset
	}
	for y := range oh {
		row := out.Pix[y*out.Stride:][:ow]
		for x := range row {
			sx, sy := from(x, y)
			if plane != nil {
				row[x] = plane[offset(b.Min.X+sx, b.Min.Y+sy)]
			} else { // CMYK JPEGs: rare, so converting pixel by pixel is fast enough
				row[x] = color.GrayModel.Convert(img.At(b.Min.X+sx, b.Min.Y+sy)).(color.Gray).Y
			}
		}
	}
	return out
}
