package uploads

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/perceptron-dev/perceptron/internal/imageprep"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// The kinds of error the store returns. Every error about an upload or an id wraps exactly one of them (test with
// errors.Is), and is an *Error whose Detail is safe to show the client. Other errors (a full disk, a cancelled
// context) are the server's or the caller's and wrap none of them.
var (
	// ErrInvalid means the upload is not a usable data set: not an archive, a corrupt or truncated one, a bad
	// layout or entry name, fewer than two classes, a file that is not a decodable image, IDX files that disagree
	// (HTTP 422, or 400).
	ErrInvalid = errors.New("invalid data set")
	// ErrTooLarge means the upload, one of its files, what it expands to, the number of its entries, an image's
	// pixels or the stored set would exceed the Limits (HTTP 413).
	ErrTooLarge = errors.New("data set too large")
	// ErrNotFound means no data set has the id, or the id is not of the form ids have (HTTP 404).
	ErrNotFound = errors.New("data set not found")
)

// Error describes what is wrong with an upload or a lookup.
type Error struct {
	Kind error  // ErrInvalid, ErrTooLarge or ErrNotFound
	Path string // the archive entry the problem is in, or "" when it concerns the whole upload
	Msg  string
}

// Detail is the message for the client: the entry's name, quoted, and what is wrong with it.
func (e *Error) Detail() string {
	if e.Path != "" {
		return strconv.Quote(e.Path) + ": " + e.Msg
	}
	return e.Msg
}

func (e *Error) Error() string { return "uploads: " + e.Kind.Error() + ": " + e.Detail() }

// Unwrap returns the kind, so errors.Is(err, ErrInvalid) works.
func (e *Error) Unwrap() error { return e.Kind }

func invalidf(path, format string, args ...any) error {
	return &Error{Kind: ErrInvalid, Path: path, Msg: fmt.Sprintf(format, args...)}
}

func tooLargef(path, format string, args ...any) error {
	return &Error{Kind: ErrTooLarge, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Defaults for the zero fields of Limits.
const (
	DefaultMaxArchiveBytes      = 256 << 20
	DefaultMaxFiles             = 100_000 // MNIST's 70,000 images fit, folders and all
	DefaultMaxUncompressedBytes = 1 << 30
	DefaultMaxFileBytes         = 16 << 20
	DefaultMaxClasses           = 100
	DefaultMaxPixels            = imageprep.DefaultMaxPixels
	DefaultMaxSetBytes          = 512 << 20
	DefaultMaxDecodedPixels     = 4_000_000_000
)

// maxClasses is the hard cap on classes: a label is stored in one byte.
const maxClasses = 256

// Limits bound the work and memory one upload may cost. Each field's zero (or negative) value means its default.
type Limits struct {
	// MaxArchiveBytes caps the upload as received: the archive, or the two IDX files together. Zero means
	// DefaultMaxArchiveBytes (256 MiB).
	MaxArchiveBytes int64
	// MaxFiles caps the entries of an archive, of every kind (files, folders, skipped ones), and the examples of an
	// IDX pair. Zero means DefaultMaxFiles (100,000).
	MaxFiles int
	// MaxUncompressedBytes caps the bytes an archive expands to, counted as they are decompressed (for a tar, headers
	// and skipped entries included). It is what refuses a zip bomb. Zero means DefaultMaxUncompressedBytes (1 GiB).
	MaxUncompressedBytes int64
	// MaxFileBytes caps one decompressed file, counted as it is read. Zero means DefaultMaxFileBytes (16 MiB).
	MaxFileBytes int64
	// MaxClasses caps the number of classes; at most 256, as a label is one byte. Zero means DefaultMaxClasses (100).
	MaxClasses int
	// MaxPixels caps the width*height of one image, checked from its header before it is decoded. Zero means
	// DefaultMaxPixels (imageprep's default, 16 Mi pixels); the service passes its MAX_PIXELS.
	MaxPixels int
	// MaxSetBytes caps the stored pixels, examples*width*height, which is also the memory Load needs. Zero means
	// DefaultMaxSetBytes (512 MiB).
	MaxSetBytes int64
	// MaxDecodedPixels caps the pixels decoded in one import, all images together: it bounds the work of an archive
	// whose entries are few bytes each but large images, or whose directory points many entries at the same one.
	// Zero means DefaultMaxDecodedPixels (4 billion, several minutes of decoding).
	MaxDecodedPixels int64
	// Memory is the process's memory budget: each image reserves what decoding it costs, and an IDX file what its
	// pixels take, before allocating. Nil means unlimited.
	Memory *membudget.Budget
}

// withDefaults returns l with every unset field at its default.
func (l Limits) withDefaults() Limits {
	def := func(v, d int64) int64 {
		if v <= 0 {
			return d
		}
		return v
	}
	l.MaxArchiveBytes = def(l.MaxArchiveBytes, DefaultMaxArchiveBytes)
	l.MaxFiles = int(def(int64(l.MaxFiles), DefaultMaxFiles))
	l.MaxUncompressedBytes = def(l.MaxUncompressedBytes, DefaultMaxUncompressedBytes)
	l.MaxFileBytes = def(l.MaxFileBytes, DefaultMaxFileBytes)
	l.MaxClasses = min(int(def(int64(l.MaxClasses), DefaultMaxClasses)), maxClasses)
	l.MaxPixels = int(def(int64(l.MaxPixels), DefaultMaxPixels))
	l.MaxSetBytes = def(l.MaxSetBytes, DefaultMaxSetBytes)
	l.MaxDecodedPixels = def(l.MaxDecodedPixels, DefaultMaxDecodedPixels)
	return l
}

// Sizes an imported set may be stored at.
const (
	DefaultSide = 28
	MinSide     = 4
	MaxSide     = 256
)

// maxNameBytes caps a set's name and a class label.
const maxNameBytes = 100

// ImportOptions say how an upload becomes a set. The zero value imports an archive of photos at 28x28 with "resize",
// or an IDX pair at its own size with "mnist".
type ImportOptions struct {
	// Name is a free-text name to show in lists, printable and at most 100 bytes. Empty means the archive's wrapper
	// folder, if it has one, or no name.
	Name string
	// Preprocess is how every image becomes the stored example, and is recorded with the set so models trained on it
	// are served the same way. Empty means model.PreprocessResize for archives and model.PreprocessMNIST for IDX.
	Preprocess model.Preprocessing
	// Width and Height are the stored image size, MinSide..MaxSide. Zero means DefaultSide (28) for archives and the
	// IDX images' own size for IDX.
	Width, Height int
	// Channels is 1 to store gray examples or 3 to store colour ones (red, green and blue planes), which only the
	// "resize" preprocessing makes. Zero means automatic: gray for "mnist" and for IDX, whose images are gray; for
	// an archive with "resize", colour when any of its images is coloured (a pixel whose channels differ by more than
	// colourTolerance levels), gray when all are gray.
	Channels int
	// Classes names the labels of an IDX pair: label i is Classes[i]. Nil means the decimal numbers "0", "1", ...,
	// up to the largest label, as for MNIST. Ignored for archives, whose folder names are the labels.
	Classes []string
}

// input resolves the options into the model input the images are prepared for.
func (o ImportOptions) input(mode model.Preprocessing, width, height int) (model.Input, error) {
	in := model.Input{Width: o.Width, Height: o.Height, Preprocess: o.Preprocess}
	if in.Width == 0 {
		in.Width = width
	}
	if in.Height == 0 {
		in.Height = height
	}
	if in.Preprocess == "" {
		in.Preprocess = mode
	}
	switch in.Preprocess {
	case model.PreprocessMNIST, model.PreprocessResize:
	default:
		return in, invalidf("", "unknown preprocessing %q; want %q or %q", in.Preprocess,
			model.PreprocessMNIST, model.PreprocessResize)
	}
	switch o.Channels {
	case 0, 1:
	case 3:
		if in.Preprocess != model.PreprocessResize {
			return in, invalidf("", "channels 3 (colour) needs the %q preprocessing; %q is gray only",
				model.PreprocessResize, in.Preprocess)
		}
		in.Channels = 3
	default:
		return in, invalidf("", "channels %d; want 1 (gray) or 3 (colour)", o.Channels)
	}
	if in.Width < MinSide || in.Width > MaxSide || in.Height < MinSide || in.Height > MaxSide {
		return in, invalidf("", "image size %dx%d; each side must be %d to %d", in.Width, in.Height, MinSide, MaxSide)
	}
	if o.Name != "" {
		if err := checkLabel(o.Name); err != nil {
			return in, invalidf("", "name %q: %v", o.Name, err)
		}
	}
	return in, nil
}
