package imageprep

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// The errors Decode returns wrap exactly one of these, so a caller maps them to a response with errors.Is.
var (
	// ErrUnsupported means the bytes are not an image in a format this package reads (PNG, JPEG, GIF, BMP, TIFF,
	// WebP), or use a feature of one that its decoder does not implement (HTTP 415).
	ErrUnsupported = errors.New("imageprep: unsupported image format")
	// ErrTooLarge means the data has more bytes, or its header declares more pixels, than the Limits allow (HTTP 413).
	ErrTooLarge = errors.New("imageprep: image too large")
	// ErrUndecodable means the bytes are in a known format but cannot be decoded: empty, truncated or corrupt
	// (HTTP 422).
	ErrUndecodable = errors.New("imageprep: image cannot be decoded")
)

// Defaults used for the zero fields of Limits.
const (
	// DefaultMaxPixels is what a caller that sets no limit gets: a 4096x4096 image, or a 12-megapixel phone photo.
	// The service always sets its own (MAX_PIXELS, api.DefaultMaxPixels), higher because it also reserves what a
	// decode costs from its memory budget before it starts.
	DefaultMaxPixels = 1 << 24
	// DefaultMaxBytes is 32 MiB.
	DefaultMaxBytes = 32 << 20
)

// maxJPEGScans caps the SOS markers of a JPEG. Every progressive scan walks all blocks of the image, so a small file
// made of thousands of empty scans would cost thousands of passes; real encoders write about ten.
const maxJPEGScans = 100

// Limits guard decoding against inputs that cost far more memory or time than their size suggests.
type Limits struct {
	// MaxPixels caps width*height as declared by the header, checked before the decoder allocates anything.
	// Zero or less means DefaultMaxPixels.
	MaxPixels int
	// MaxBytes caps the length of the encoded data. Zero or less means DefaultMaxBytes.
	MaxBytes int64
}

func (l Limits) maxPixels() int {
	if l.MaxPixels <= 0 {
		return DefaultMaxPixels
	}
	return l.MaxPixels
}

func (l Limits) maxBytes() int64 {
	if l.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return l.MaxBytes
}

// codec is one format: the magic numbers that identify it and its decoder's two entry points. The package keeps its
// own table, rather than the image package's registry, so what it accepts does not depend on what else the program
// happens to import.
type codec struct {
	name   string
	magic  []string // '?' matches any byte
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}

var codecs = []codec{
	{"png", []string{"\x89PNG\r\n\x1a\n"}, png.DecodeConfig, png.Decode},
	{"jpeg", []string{"\xff\xd8"}, jpeg.DecodeConfig, jpeg.Decode},
	{"gif", []string{"GIF87a", "GIF89a"}, gif.DecodeConfig, gif.Decode}, // gif.Decode stops after the first frame
	{"bmp", []string{"BM????\x00\x00\x00\x00"}, bmp.DecodeConfig, bmp.Decode},
	{"tiff", []string{"II*\x00", "MM\x00*"}, tiff.DecodeConfig, tiff.Decode},
	{"webp", []string{"RIFF????WEBPVP8"}, webp.DecodeConfig, webp.Decode},
}

// match reports whether data starts with magic; prefix reports whether data is a proper, non-empty prefix of it,
// which is what a truncated file of that format looks like.
func match(data []byte, magic string) (match, prefix bool) {
	n := min(len(data), len(magic))
	for i := range n {
		if magic[i] != '?' && magic[i] != data[i] {
			return false, false
		}
	}
	return len(data) >= len(magic), len(data) > 0 && len(data) < len(magic)
}

// sniff returns the codec whose magic number data starts with. truncated is set when no codec matches but data is
// the beginning of some magic number.
func sniff(data []byte) (c *codec, truncated bool) {
	for i := range codecs {
		for _, m := range codecs[i].magic {
			ok, prefix := match(data, m)
			if ok {
				return &codecs[i], false
			}
			truncated = truncated || prefix
		}
	}
	return nil, truncated
}

// Decode sniffs the format of data from its first bytes, reads the header to learn the dimensions, refuses an image
// of more than lim.MaxPixels before any pixel memory is allocated, and only then decodes it. format is the format's
// name ("png", "jpeg", "gif", "bmp", "tiff" or "webp"), known as soon as the bytes were recognised. A GIF yields its
// first frame. A JPEG comes back turned upright as its EXIF Orientation says.
//
// Every error wraps ErrUnsupported, ErrTooLarge or ErrUndecodable. Decode never panics: a panic inside a decoder is
// recovered and reported as ErrUndecodable.
func Decode(data []byte, lim Limits) (img image.Image, format string, err error) {
	c, _, err := config(data, lim)
	if err != nil {
		if c != nil {
			format = c.name
		}
		return nil, format, err
	}
	if err := guard(func() (err error) { img, err = c.decode(bytes.NewReader(data)); return err }); err != nil {
		return nil, c.name, decodeErr(c.name, err)
	}
	// The header was checked; this catches a decoder that believed something else (it cannot undo the allocation,
	// but it keeps an oversized image from going further).
	b := img.Bounds()
	if err := checkPixels(b.Dx(), b.Dy(), lim.maxPixels()); err != nil {
		return nil, c.name, err
	}
	if c.name == "jpeg" {
		img = orient(img, jpegOrientation(data))
	}
	return img, c.name, nil
}

// DecodeConfig does the checks of Decode that need only the header, and returns the image's size and format: a
// caller can budget memory for the pixels before decoding them.
func DecodeConfig(data []byte, lim Limits) (width, height int, format string, err error) {
	c, cfg, err := config(data, lim)
	if c != nil {
		format = c.name
	}
	return cfg.Width, cfg.Height, format, err
}

// config sniffs the format and checks the header against the limits.
func config(data []byte, lim Limits) (*codec, image.Config, error) {
	if int64(len(data)) > lim.maxBytes() {
		return nil, image.Config{}, fmt.Errorf("%w: %d bytes, more than the limit of %d", ErrTooLarge, len(data), lim.maxBytes())
	}
	if len(data) == 0 {
		return nil, image.Config{}, fmt.Errorf("%w: no data", ErrUndecodable)
	}
	c, truncated := sniff(data)
	if c == nil {
		if truncated {
			return nil, image.Config{}, fmt.Errorf("%w: %d bytes, too short to be an image", ErrUndecodable, len(data))
		}
		return nil, image.Config{}, fmt.Errorf("%w: the data is not PNG, JPEG, GIF, BMP, TIFF or WebP", ErrUnsupported)
	}
	if err := checkStructure(c.name, data, lim.maxPixels()); err != nil {
		return c, image.Config{}, err
	}
	var cfg image.Config
	if err := guard(func() (err error) { cfg, err = c.config(bytes.NewReader(data)); return err }); err != nil {
		return c, image.Config{}, decodeErr(c.name, err)
	}
	if err := checkPixels(cfg.Width, cfg.Height, lim.maxPixels()); err != nil {
		return c, cfg, err
	}
	return c, cfg, nil
}

func checkPixels(w, h, limit int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: empty image (%dx%d)", ErrUndecodable, w, h)
	}
	if w > limit/h {
		return fmt.Errorf("%w: %dx%d pixels, more than the limit of %d", ErrTooLarge, w, h, limit)
	}
	return nil
}

// checkStructure refuses inputs whose cost is not bounded by their pixel count, and PNG dimensions that png's own
// DecodeConfig would call an unsupported overflow rather than too large.
func checkStructure(format string, data []byte, maxPixels int) error {
	if format == "png" && len(data) >= 24 && string(data[12:16]) == "IHDR" {
		w, h := binary.BigEndian.Uint32(data[16:]), binary.BigEndian.Uint32(data[20:])
		if w > 0 && h > 0 && uint64(w)*uint64(h) > uint64(maxPixels) {
			return fmt.Errorf("%w: %dx%d pixels, more than the limit of %d", ErrTooLarge, w, h, maxPixels)
		}
	}
	if format == "jpeg" {
		if n := bytes.Count(data, []byte{0xff, 0xda}); n > maxJPEGScans {
			return fmt.Errorf("%w: jpeg: %d scans, more than the limit of %d", ErrUndecodable, n, maxJPEGScans)
		}
	}
	return nil
}

// guard runs a decoder and turns a panic into an error, as a last line of defence: the decoders are meant never to
// panic, but a server must not go down if one does on some input nobody has tried yet.
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder panicked: %v", r)
		}
	}()
	return f()
}

// decodeErr classifies a decoder's error: a feature the decoder does not implement is ErrUnsupported, anything else
// (truncated or corrupt data) ErrUndecodable.
func decodeErr(format string, err error) error {
	var (
		pngU  png.UnsupportedError
		jpegU jpeg.UnsupportedError
		tiffU tiff.UnsupportedError
	)
	if errors.As(err, &pngU) || errors.As(err, &jpegU) || errors.As(err, &tiffU) || errors.Is(err, bmp.ErrUnsupported) {
		return fmt.Errorf("%w (%s): %v", ErrUnsupported, format, err)
	}
	return fmt.Errorf("%w (%s): %v", ErrUndecodable, format, err)
}
