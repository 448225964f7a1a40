package imageprep

import (
	"image"
	"image/color"
	"math/rand/v2"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

// BenchmarkPrepareBytes measures Decode and Prepare together, with a Preparer kept across images as a worker keeps
// one:
//
//	go test ./internal/imageprep -run '^$' -bench PrepareBytes -benchmem
func BenchmarkPrepareBytes(b *testing.B) {
	for _, bc := range benchInputs(b) {
		b.Run(bc.name, func(b *testing.B) {
			var p Preparer
			dst := make([]float32, 784)
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.data)))
			for b.Loop() {
				if _, err := p.PrepareBytes(dst, bc.data, Limits{}, mnistInput); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPrepare measures Prepare alone on decoded images.
func BenchmarkPrepare(b *testing.B) {
	for _, bc := range benchInputs(b) {
		img, _, err := Decode(bc.data, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			var p Preparer
			dst := make([]float32, 784)
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Prepare(dst, img, mnistInput); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchInput is an encoded upload, named by what it decodes to.
type benchInput struct {
	name string
	data []byte
}

// benchInputs are the uploads both benchmarks use: a raw 28x28 digit (decodes to Gray), the same dark on white,
// canvas drawings of the page's ink on a transparent field (NRGBA) at 28x28, 200x200 and the page's 280x280, and a
// 1000x1000 pencil-on-paper JPEG (YCbCr), all of real MNIST test digit 0.
func benchInputs(b testing.TB) []benchInput {
	pix := mnistTest(b).Image(0)
	rng := rand.New(rand.NewPCG(1, 1))
	return []benchInput{
		{"png-gray=28x28", uploadtest.EncodePNG(uploadtest.DigitGray(pix))},
		{"png-gray-on-white=28x28", uploadtest.EncodePNG(uploadtest.ToGray(uploadtest.Paint{Paper: color.RGBA{255, 255, 255, 255}, Ink: color.RGBA{0, 0, 0, 255}}.RGBA(uploadtest.InkMap(pix, 28), 28, 28, rng)))},
		{"png-nrgba=28x28", uploadtest.EncodePNG(uploadtest.Canvas(uploadtest.InkMap(pix, 28), 28, color.NRGBA{0x11, 0x11, 0x11, 0}))},
		{"png-nrgba=200x200", uploadtest.EncodePNG(uploadtest.Canvas(uploadtest.InkMap(pix, 200), 200, color.NRGBA{0x11, 0x11, 0x11, 0}))},
		{"png-nrgba=280x280", uploadtest.EncodePNG(uploadtest.Canvas(uploadtest.InkMap(pix, 280), 280, color.NRGBA{}))},
		{"jpeg-ycbcr=1000x1000", uploadtest.EncodeJPEG(uploadtest.Paint{Paper: uploadtest.OffWhite, Ink: uploadtest.Pencil, Noise: 4}.RGBA(uploadtest.InkMap(pix, 1000), 1000, 1000, rng), 85)},
	}
}

// BenchmarkKeepComponents measures the labelling step alone on the ink of MNIST test digits, which it leaves as it
// was (they have no specks to erase, so every round does the same work).
func BenchmarkKeepComponents(b *testing.B) {
	set := mnistTest(b)
	var p Preparer
	inks := make([][]float32, 16)
	for i := range inks {
		inks[i] = append([]float32(nil), p.flatInkOf(uploadtest.DigitGray(set.Image(i)))...)
	}
	ink := make([]float32, 28*28)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		copy(ink, inks[i%len(inks)])
		if _, _, _, _, ok := p.keepComponents(ink, 28, 28); !ok {
			b.Fatal("no ink")
		}
		i++
	}
}

// BenchmarkFastPath measures Prepare on decoded 28x28 gray MNIST test digits, the form MNIST clients send, which the
// fast path takes; one op is one digit, the first 64 in turn:
//
//	go test ./internal/imageprep -run '^$' -bench FastPath -cpu 1
func BenchmarkFastPath(b *testing.B) {
	set := mnistTest(b)
	imgs := make([]*image.Gray, 64)
	for i := range imgs {
		imgs[i] = uploadtest.DigitGray(set.Image(i))
	}
	var p Preparer
	dst := make([]float32, 784)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := p.Prepare(dst, imgs[i%len(imgs)], mnistInput); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
