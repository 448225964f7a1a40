package uploads

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"image"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/imageprep"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// Import reads an uploaded archive (zip, tar.gz or tar; see the package documentation for the layout), prepares
// every image as opts say, and stores the result as a new data set. The examples are stored grouped by class, in
// class order, and by entry name within a class. Classes are ordered by number when every label is a decimal number
// ("2" before "10"), and by name otherwise.
//
// Errors about the upload wrap ErrInvalid or ErrTooLarge and name the entry at fault. Images are decoded on
// GOMAXPROCS goroutines; the first error, or ctx being cancelled, stops the work.
func (s *Store) Import(ctx context.Context, archive []byte, opts ImportOptions) (Info, error) {
	in, err := opts.input(model.PreprocessResize, DefaultSide, DefaultSide)
	if err != nil {
		return Info{}, err
	}
	// Automatic channels prepare every photo in colour, and keep gray if none turns out to have any.
	auto := opts.Channels == 0 && in.Preprocess == model.PreprocessResize
	if auto {
		in.Channels = 3
	}
	lim := s.lim
	if int64(len(archive)) > lim.MaxArchiveBytes {
		return Info{}, tooLargef("", "the upload is %d bytes, more than the limit of %d", len(archive),
			lim.MaxArchiveBytes)
	}
	source, walk, err := openArchive(archive, lim)
	if err != nil {
		return Info{}, err
	}
	maxExamples := maxExamples(lim, in)
	var files []file // names only: the bytes go to the workers and are dropped once decoded
	seen := make(map[string]bool)
	decodeLim := imageprep.Limits{MaxPixels: lim.MaxPixels, MaxBytes: lim.MaxFileBytes}
	if err := checkDecodedPixels(walk, lim, decodeLim, prepSpec(in)); err != nil {
		return Info{}, err
	}
	pix, err := prepareAll(ctx, in, func(send func(job) error) error {
		return walk(func(f file) error {
			if seen[f.name] {
				return invalidf(f.name, "appears twice in the archive")
			}
			seen[f.name] = true
			if len(files) >= maxExamples {
				return tooLargef("", "more than %d images at %dx%d, more than the limit of %d stored bytes",
					maxExamples, in.Width, in.Height, lim.MaxSetBytes)
			}
			files = append(files, file{name: f.name, parts: f.parts})
			data := f.data
			cost, err := imageprep.EstimateCost(data, decodeLim, prepSpec(in))
			if err == nil {
				if err := lim.Memory.Fits(cost.Total()); err != nil {
					return tooLargef(f.name, "%dx%d %s: %v (MEMORY_LIMIT)", cost.Width, cost.Height, cost.Format, err)
				}
			}
			return send(job{seq: len(files) - 1, name: f.name, prepare: func(p *imageprep.Preparer, dst []float32) error {
				if cost.Total() > 0 {
					// Waits while predictions or other imports hold the memory; the request's context bounds it.
					if err := lim.Memory.Reserve(ctx, cost.Total()); err != nil {
						return err
					}
					defer lim.Memory.Release(cost.Total())
				}
				format, err := p.PrepareBytes(dst, data, decodeLim, prepSpec(in))
				if format == "" && errors.Is(err, imageprep.ErrUnsupported) {
					return invalidf(f.name, "%s", describe(data))
				}
				return imageError(f.name, err)
			}})
		})
	})
	if err != nil {
		return Info{}, err
	}
	if auto && !slices.ContainsFunc(pix, coloured) {
		in.Channels = 0
		for i, p := range pix {
			pix[i] = p[:len(p)/3] // the red plane, equal to the others and to the luminance
		}
	}
	if n := int64(len(pix)) * int64(in.Size()); n > lim.MaxSetBytes {
		return Info{}, tooLargef("", "%d images at %dx%dx%d, more than the limit of %d stored bytes", len(pix),
			in.Width, in.Height, in.ChannelCount(), lim.MaxSetBytes)
	}
	set, info, err := assemble(files, pix, in, lim)
	if err != nil {
		return Info{}, err
	}
	if opts.Name != "" {
		info.Name = opts.Name
	}
	info.Source = source
	return s.save(set, info)
}

// checkDecodedPixels walks the archive once reading only the images' headers, and refuses it when their pixels
// sum past lim.MaxDecodedPixels: the decoding pass works on several images at once, so checking the sum as it goes
// would still decode up to the cap before refusing. Entries whose header cannot be read are left to that pass,
// which reports them by name. Inflating the archive twice costs far less than decoding what it holds.
func checkDecodedPixels(walk walker, lim Limits, decodeLim imageprep.Limits, spec imageprep.Spec) error {
	var total int64
	return walk(func(f file) error {
		cost, err := imageprep.EstimateCost(f.data, decodeLim, spec)
		if err != nil {
			return nil
		}
		if total += int64(cost.Width) * int64(cost.Height); total > lim.MaxDecodedPixels {
			return tooLargef(f.name, "the images decode to more than %d pixels in all, the limit of one import",
				lim.MaxDecodedPixels)
		}
		return nil
	})
}

// maxExamples is how many examples of in's size fit the limits. Automatic channels count gray examples here, and
// the set's size is checked again once it is known to be colour.
func maxExamples(lim Limits, in model.Input) int {
	return int(min(int64(lim.MaxFiles), lim.MaxSetBytes/int64(in.Width*in.Height)))
}

// colourTolerance is how many levels apart a pixel's red, green and blue may be in an image taken for gray: JPEG
// and resampling leave a little colour noise in gray pictures.
const colourTolerance = 8

// coloured reports whether a prepared colour example has a pixel whose channels differ by more than colourTolerance.
func coloured(pix []byte) bool {
	n := len(pix) / 3
	r, g, b := pix[:n], pix[n:2*n], pix[2*n:]
	for i := range n {
		if absDiff(r[i], g[i]) > colourTolerance || absDiff(g[i], b[i]) > colourTolerance || absDiff(r[i], b[i]) > colourTolerance {
			return true
		}
	}
	return false
}

func absDiff(a, b byte) byte { return max(a, b) - min(a, b) }

// imageError turns an error of imageprep into one of ours that names the file.
func imageError(name string, err error) error {
	// An example without a digit keeps its blank vector: a training set holds what its owner labelled.
	if err == nil || errors.Is(err, imageprep.ErrNoDigit) {
		return nil
	}
	msg := strings.TrimPrefix(err.Error(), "imageprep: ")
	if errors.Is(err, imageprep.ErrTooLarge) {
		return tooLargef(name, "%s", msg)
	}
	return invalidf(name, "%s", msg)
}

// job is one image to prepare.
type job struct {
	seq     int
	name    string
	prepare func(p *imageprep.Preparer, dst []float32) error
}

// prepareAll runs produce, which calls send for every image in order, and prepares the images on GOMAXPROCS
// goroutines, each with its own Preparer. It returns the examples as bytes, indexed by seq. An image's error stops
// produce; the error returned is the one of the first bad image in the archive's order, whichever worker finds an
// error first, so the same archive is always refused with the same message. An error of produce's own comes after
// every image it sent, so it is returned only when all of those were good.
func prepareAll(ctx context.Context, in model.Input, produce func(send func(job) error) error) ([][]byte, error) {
	sending, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan job, workers)
	type result struct {
		seq int
		pix []byte
	}
	var (
		mu      sync.Mutex
		results []result
		bad     = -1 // seq of the first bad image found so far
		badErr  error
		wg      sync.WaitGroup
	)
	// after reports whether an image before seq is already known to be bad, so seq cannot change the answer.
	after := func(seq int) bool {
		mu.Lock()
		defer mu.Unlock()
		return bad >= 0 && seq > bad
	}
	for range workers {
		wg.Go(func() {
			var p imageprep.Preparer
			dst := make([]float32, in.Size())
			var local []result
			for j := range jobs {
				if ctx.Err() != nil || after(j.seq) {
					continue // drain, so the producer never blocks
				}
				if err := j.prepare(&p, dst); err != nil {
					mu.Lock()
					if bad < 0 || j.seq < bad {
						bad, badErr = j.seq, err
					}
					mu.Unlock()
					// Every image before this one has been sent already: the producer sends in order.
					stop(err)
					continue
				}
				local = append(local, result{j.seq, quantize(dst)})
			}
			mu.Lock()
			results = append(results, local...)
			mu.Unlock()
		})
	}
	err := produce(func(j job) error {
		select {
		case jobs <- j:
			return nil
		case <-sending.Done():
			return context.Cause(sending)
		}
	})
	close(jobs)
	wg.Wait()
	if ctx.Err() != nil {
		return nil, context.Cause(ctx) // the caller's cancellation
	}
	if badErr != nil {
		return nil, badErr
	}
	if err != nil {
		return nil, err
	}
	pix := make([][]byte, len(results))
	for _, r := range results {
		pix[r.seq] = r.pix
	}
	return pix, nil
}

// quantize turns prepared values in 0..1 into bytes 0..255.
func quantize(v []float32) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(min(max(x, 0), 1)*255 + 0.5)
	}
	return b
}

// assemble works out the classes from the folder names of files, whose prepared pixels are pix, and builds the set.
func assemble(files []file, pix [][]byte, in model.Input, lim Limits) (*dataset.Set, Info, error) {
	if len(files) == 0 {
		return nil, Info{}, invalidf("", "the archive holds no images")
	}
	// A single folder above all the class folders is a wrapper: zip -r digits.zip digits/ makes one.
	depth, wrapper := 0, files[0].parts[0]
	if !slices.ContainsFunc(files, func(f file) bool { return len(f.parts) < 3 || f.parts[0] != wrapper }) {
		depth = 1
	} else {
		wrapper = ""
	}
	labels := make([]string, len(files))
	var classes []string
	for i, f := range files {
		parts := f.parts[depth:]
		if len(parts) < 2 {
			return nil, Info{}, invalidf(f.name, "is not inside a class folder; put each image in a folder named "+
				"after its class, e.g. cat/001.jpg")
		}
		// Folder names that differ only in their Unicode form look identical to a user ("café" composed, as most
		// systems write it, or decomposed, as macOS does), so they are one class, stored in the composed form (NFC).
		label := norm.NFC.String(parts[0])
		labels[i] = label
		if !slices.Contains(classes, label) {
			if err := checkLabel(label); err != nil {
				return nil, Info{}, invalidf(f.name, "the class folder name %v", err)
			}
			if len(classes) == lim.MaxClasses {
				return nil, Info{}, invalidf("", "more than %d classes", lim.MaxClasses)
			}
			classes = append(classes, label)
		}
	}
	if len(classes) < 2 {
		return nil, Info{}, invalidf("", "all images are in the one class folder %q; a data set needs at least "+
			"two classes, one folder each", classes[0])
	}
	sortClasses(classes)
	index := make(map[string]int, len(classes))
	for i, c := range classes {
		index[c] = i
	}
	order := make([]int, len(files))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(index[labels[a]], index[labels[b]]), strings.Compare(files[a].name, files[b].name))
	})
	set := &dataset.Set{Classes: classes, Rows: in.Height, Cols: in.Width, Channels: in.ChannelCount(),
		X: make([]byte, 0, len(files)*in.Size()), Y: make([]byte, 0, len(files))}
	for _, i := range order {
		set.X = append(set.X, pix[i]...)
		set.Y = append(set.Y, byte(index[labels[i]]))
	}
	info := newInfo(set, in)
	if depth == 1 && checkLabel(wrapper) == nil {
		info.Name = wrapper
	}
	return set, info, nil
}

// newInfo describes set, prepared for in.
func newInfo(set *dataset.Set, in model.Input) Info {
	counts := make([]int, len(set.Classes))
	for _, y := range set.Y {
		counts[y]++
	}
	return Info{Classes: set.Classes, Counts: counts, Examples: set.Len(), Width: in.Width, Height: in.Height,
		Preprocess: in.Preprocess, Channels: in.ChannelCount(), Created: time.Now().UTC().Truncate(time.Second)}
}

// checkLabel says what is wrong with a class label or set name, which is shown in lists and responses: it must be
// non-empty, at most 100 bytes of printable UTF-8, without leading or trailing spaces.
func checkLabel(s string) error { return model.CheckText(s, maxNameBytes) }

// sortClasses orders labels by number when all are decimal numbers, and by name otherwise.
func sortClasses(classes []string) {
	nums := make(map[string]uint64, len(classes))
	for _, c := range classes {
		n, err := strconv.ParseUint(c, 10, 64)
		if err != nil {
			slices.Sort(classes)
			return
		}
		nums[c] = n
	}
	slices.SortFunc(classes, func(a, b string) int { return cmp.Or(cmp.Compare(nums[a], nums[b]), strings.Compare(a, b)) })
}

// ImportIDX stores an IDX image file (items x rows x columns, plain or gzip) and an IDX label file (items class
// indices) as a new data set. Each image is prepared as opts say, like an archive's: by default with "mnist" at the
// images' own size. The labels name the classes opts.Classes gives, or "0", "1", ... up to the largest label.
func (s *Store) ImportIDX(ctx context.Context, images, labels []byte, opts ImportOptions) (Info, error) {
	lim := s.lim
	if total := int64(len(images)) + int64(len(labels)); total > lim.MaxArchiveBytes {
		return Info{}, tooLargef("", "the upload is %d bytes, more than the limit of %d", total, lim.MaxArchiveBytes)
	}
	imgDims, err := dataset.ReadIDXHeader(images, 3)
	if err != nil {
		return Info{}, invalidf("", "image file: %v", err)
	}
	labDims, err := dataset.ReadIDXHeader(labels, 1)
	if err != nil {
		return Info{}, invalidf("", "label file: %v", err)
	}
	n, rows, cols := imgDims[0], imgDims[1], imgDims[2]
	switch {
	case n != labDims[0]:
		return Info{}, invalidf("", "the image file holds %d images but the label file %d labels", n, labDims[0])
	case n > lim.MaxFiles:
		return Info{}, tooLargef("", "%d images, more than the limit of %d", n, lim.MaxFiles)
	case int64(n)*int64(rows)*int64(cols) > lim.MaxUncompressedBytes:
		return Info{}, tooLargef("", "the image file holds %d bytes of pixels, more than the limit of %d",
			int64(n)*int64(rows)*int64(cols), lim.MaxUncompressedBytes)
	case rows > 1<<14 || cols > 1<<14 || rows*cols > lim.MaxPixels:
		return Info{}, tooLargef("", "the images are %dx%d pixels, more than the limit", cols, rows)
	}
	in, err := opts.input(model.PreprocessMNIST, cols, rows)
	if err != nil {
		return Info{}, err
	}
	if in.Channels == 3 {
		return Info{}, invalidf("", "channels 3: IDX images are gray; upload colour images in an archive")
	}
	if n > maxExamples(lim, in) {
		return Info{}, tooLargef("", "%d images at %dx%d, more than the limit of %d stored bytes", n, in.Width,
			in.Height, lim.MaxSetBytes)
	}
	// The pixels are held twice: as read, and as the set they become. Reserve them before inflating anything.
	need := 2 * int64(n) * int64(rows) * int64(cols)
	if err := lim.Memory.Fits(need); err != nil {
		return Info{}, tooLargef("", "%d images of %dx%d: %v (MEMORY_LIMIT)", n, cols, rows, err)
	}
	if err := lim.Memory.Reserve(ctx, need); err != nil {
		return Info{}, err
	}
	defer lim.Memory.Release(need)
	imgIDX, err := dataset.ReadIDX(bytes.NewReader(images), lim.MaxUncompressedBytes)
	if err != nil {
		return Info{}, invalidf("", "image file: %v", err)
	}
	labIDX, err := dataset.ReadIDX(bytes.NewReader(labels), lim.MaxUncompressedBytes)
	if err != nil {
		return Info{}, invalidf("", "label file: %v", err)
	}
	raw, err := dataset.FromIDX(imgIDX, labIDX)
	if err != nil {
		return Info{}, invalidf("", "%v", err)
	}
	classes, err := idxClasses(raw, opts.Classes, lim)
	if err != nil {
		return Info{}, err
	}
	pix, err := prepareAll(ctx, in, func(send func(job) error) error {
		for i := range raw.Len() {
			img := &image.Gray{Pix: raw.Image(i), Stride: cols, Rect: image.Rect(0, 0, cols, rows)}
			name := fmt.Sprintf("image %d", i)
			err := send(job{seq: i, name: name, prepare: func(p *imageprep.Preparer, dst []float32) error {
				return imageError(name, p.Prepare(dst, img, prepSpec(in)))
			}})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Info{}, err
	}
	set := &dataset.Set{Classes: classes, Rows: in.Height, Cols: in.Width, X: bytes.Join(pix, nil), Y: raw.Y}
	info := newInfo(set, in)
	info.Name = opts.Name
	info.Source = sourceIDX
	return s.save(set, info)
}

// idxClasses checks the labels of an IDX set and returns the class names.
func idxClasses(raw *dataset.Set, names []string, lim Limits) ([]string, error) {
	var present [maxClasses]bool
	distinct, top := 0, 0
	for _, y := range raw.Y {
		if !present[y] {
			present[y] = true
			distinct++
			top = max(top, int(y))
		}
	}
	switch {
	case top >= lim.MaxClasses:
		return nil, invalidf("", "label %d; at most %d classes are allowed", top, lim.MaxClasses)
	case distinct < 2:
		return nil, invalidf("", "every label is %d; a data set needs at least two classes", top)
	case names == nil:
		return raw.Classes, nil
	case len(names) <= top:
		return nil, invalidf("", "%d class names for labels up to %d", len(names), top)
	case len(names) > lim.MaxClasses:
		return nil, invalidf("", "%d class names, more than the limit of %d", len(names), lim.MaxClasses)
	}
	for i, c := range names {
		if err := checkLabel(c); err != nil {
			return nil, invalidf("", "class name %d %v", i, err)
		}
		if slices.Contains(names[:i], c) {
			return nil, invalidf("", "class name %q appears twice", c)
		}
	}
	return slices.Clone(names), nil
}

// prepSpec is what preprocessing needs to know of the input the data set is built for.
func prepSpec(in model.Input) imageprep.Spec {
	return imageprep.Spec{Width: in.Width, Height: in.Height, Mode: imageprep.Mode(in.Preprocess), Channels: in.Channels}
}
