package imageprep

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image/color"
)

// Cost is the memory, in bytes, that decoding one image and preparing it needs at most, worked out from its header
// before anything is allocated. A caller reserves it from the process's memory budget first.
type Cost struct {
	Width, Height int
	Format        string
	Decode        int64 // what the decoder allocates: the pixels in the type it returns, and its own buffers
	Prepare       int64 // the scratch of Prepare, which works on a reduced copy
}

// Total is Decode plus Prepare.
func (c Cost) Total() int64 { return c.Decode + c.Prepare }

// EstimateCost reads data's header, does the checks of DecodeConfig, and returns what decoding and preparing it
// for spec will cost in memory. The figures follow what the decoders allocate:
//   - JPEG: the YCbCr planes, up to 3 bytes a pixel at 4:4:4 (1 for gray); a CMYK or YCCK image adds a black plane
//     and then an image.CMYK of 4 bytes a pixel; a progressive one keeps every DCT coefficient as an int32 until
//     the last scan, 4 bytes per pixel and component; blocks are rounded up to whole 16x16 MCUs; an EXIF rotation
//     makes a copy.
//   - PNG: the image in its colour model (1 byte a pixel for gray or paletted, 2 for 16-bit gray, 4 for RGB(A), 8
//     for 16-bit RGB(A)), the same again for the inflated rows the fast path keeps, and a third copy for Adam7
//     interlacing, whose passes are decoded apart and then merged.
//   - GIF: a paletted frame and the LZW output, 2 bytes a pixel. BMP: 4. TIFF: twice its colour model (the strips
//     are inflated whole before conversion). WebP: 12, for the lossless decoder's ARGB words and the NRGBA result.
//
// A small PNG (at most smallPNGPixels) is costed from its IHDR chunk alone, at the dearest colour model and with
// interlacing, which bounds every form it can take: its decoding then does the remaining checks of DecodeConfig
// once rather than twice, and fails with the same errors.
func EstimateCost(data []byte, lim Limits, spec Spec) (Cost, error) {
	if c, ok := smallPNGCost(data, lim, spec); ok {
		return c, nil
	}
	return estimateCost(data, lim, spec)
}

// estimateCost is EstimateCost from the header as the format's DecodeConfig reads it.
func estimateCost(data []byte, lim Limits, spec Spec) (Cost, error) {
	c, cfg, err := config(data, lim)
	if err != nil {
		return Cost{}, err
	}
	w, h := int64(cfg.Width), int64(cfg.Height)
	px := w * h
	cost := Cost{Width: cfg.Width, Height: cfg.Height, Format: c.name}
	switch c.name {
	case "jpeg":
		pw, ph := (w+15)/16*16, (h+15)/16*16
		padded := pw * ph
		comps, out := int64(3), int64(0)
		switch cfg.ColorModel {
		case color.GrayModel:
			comps = 1
		case color.CMYKModel:
			comps, out = 4, 4*px // YCbCr planes and a black plane, then converted into an image.CMYK
		}
		cost.Decode = comps*padded + out
		if jpegProgressive(data) {
			cost.Decode += comps * padded * 4
		}
		if jpegOrientation(data) > 1 {
			cost.Decode += max(comps, 4) * px
		}
	case "png":
		bpp := bytesPerPixel(cfg.ColorModel)
		cost.Decode = 2*bpp*px + 2*(bpp*w+1)
		if len(data) > 28 && data[28] == 1 {
			cost.Decode += bpp * px
		}
	case "gif":
		cost.Decode = 2 * px
	case "bmp":
		cost.Decode = 4*px + 4*w
	case "tiff":
		cost.Decode = 2 * bytesPerPixel(cfg.ColorModel) * px
	default: // webp
		cost.Decode = 12 * px
	}
	cost.Decode += 64 << 10 // tables, Huffman and inflate state, row buffers
	cost.Prepare = prepareCost(cfg.Width, cfg.Height, spec)
	return cost, nil
}

// prepareCost is the scratch Prepare needs for a w x h image: it first sums the image into a working copy whose
// side is at most workSide (mnist) or a small multiple of the input size (resize), with about 48 bytes per working
// pixel across its sums, luminance, alpha, ink and component buffers, plus one int32 per source column. Colour adds
// three sums and three planes, 36 bytes a working pixel.
func prepareCost(w, h int, spec Spec) int64 {
	var f int
	if spec.Mode == ModeResize && spec.Width > 0 && spec.Height > 0 {
		f = max(1, min(w/spec.Width, h/spec.Height))
	} else {
		f = (max(w, h) + workSide - 1) / workSide
	}
	ww, wh := int64((w+f-1)/f), int64((h+f-1)/f)
	perPixel := int64(48)
	if spec.Channels == 3 {
		perPixel += 36
	}
	return perPixel*ww*wh + 4*int64(w) + 64<<10
}

// bytesPerPixel is the size of one pixel of an image in colour model m, as the decoders return it.
func bytesPerPixel(m color.Model) int64 {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.RGBAModel, color.NRGBAModel:
		return 4
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 8
}

// jpegProgressive reports whether data has a progressive frame header (SOF2, or the arithmetic-coded SOF6/SOF10
// the decoder refuses anyway). The marker is looked for anywhere: inside entropy-coded data a 0xFF byte is always
// followed by 0x00 or a restart marker, so a false match can only come from metadata, and costs an over-estimate.
func jpegProgressive(data []byte) bool {
	return bytes.Contains(data, []byte{0xff, 0xc2})
}

// smallPNGPixels bounds the PNGs that smallPNGCost takes: at the dearest colour model, a 64x64 image costs about
// 100 KB to decode, so reserving that much for any small PNG is as cheap as working out its exact figure.
const smallPNGPixels = 64 * 64

// smallPNGCost is EstimateCost's figure for a PNG of at most smallPNGPixels, from a well-formed IHDR chunk (its CRC
// checked), without reading further: 8 bytes a pixel (16-bit RGBA) twice, and a third time for Adam7 interlacing.
// ok is false for anything else, which takes the general path.
func smallPNGCost(data []byte, lim Limits, spec Spec) (c Cost, ok bool) {
	const ihdrEnd = 8 + 8 + 13 + 4 // signature, length and type, the chunk, its CRC
	if len(data) < ihdrEnd || int64(len(data)) > lim.maxBytes() || !bytes.HasPrefix(data, pngSignature) ||
		string(data[8:16]) != "\x00\x00\x00\x0dIHDR" ||
		crc32.ChecksumIEEE(data[12:29]) != binary.BigEndian.Uint32(data[29:]) {
		return Cost{}, false
	}
	w, h := binary.BigEndian.Uint32(data[16:]), binary.BigEndian.Uint32(data[20:])
	if w == 0 || h == 0 || uint64(w)*uint64(h) > smallPNGPixels || int(w) > lim.maxPixels()/int(h) {
		return Cost{}, false
	}
	const bpp = 8
	px := int64(w) * int64(h)
	c = Cost{Width: int(w), Height: int(h), Format: "png"}
	c.Decode = 3*bpp*px + 2*(bpp*int64(w)+1) + 64<<10
	c.Prepare = prepareCost(c.Width, c.Height, spec)
	return c, true
}
