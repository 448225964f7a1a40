package imageprep

import (
	"image/color"
	"os"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

// BenchmarkDecodePNG measures the fast PNG decoder alone on real MNIST test digits, encoded as clients encode them:
// Go's png.Encoder on the raw digit (gray) and on dark ink on white paper (gray), a canvas drawing (NRGBA with
// alpha), an opaque RGB page, and the load test's digit written by PIL (one fixed-Huffman block). Each round decodes
// the next of the digits, so the branch predictors do not learn one image:
//
//	go test ./internal/imageprep -run '^$' -bench DecodePNG -benchmem -cpu 1
func BenchmarkDecodePNG(b *testing.B) {
	for _, bc := range decodeBenchInputs(b) {
		b.Run(bc.name, func(b *testing.B) {
			var d pngDecoder
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := d.decode(bc.data[i], 1<<24); !ok {
					b.Fatal("the fast decoder declined it")
				}
				i++
				if i == len(bc.data) {
					i = 0
				}
			}
		})
	}
}

// decodeBenchInput is a set of encoded digits of one form.
type decodeBenchInput struct {
	name string
	data [][]byte
}

func decodeBenchInputs(b testing.TB) []decodeBenchInput {
	const digits = 64
	set := mnistTest(b)
	in := []decodeBenchInput{{name: "gray=28x28"}, {name: "gray-on-white=28x28"}, {name: "nrgba=28x28"}, {name: "rgb=28x28"}}
	white := uploadtest.Paint{Paper: color.RGBA{255, 255, 255, 255}, Ink: color.RGBA{0, 0, 0, 255}}
	for i := range digits {
		pix := set.Image(i)
		ink := uploadtest.InkMap(pix, 28)
		page := white.RGBA(ink, 28, 28, nil)
		in[0].data = append(in[0].data, uploadtest.EncodePNG(uploadtest.DigitGray(pix)))
		in[1].data = append(in[1].data, uploadtest.EncodePNG(uploadtest.ToGray(page)))
		in[2].data = append(in[2].data, uploadtest.EncodePNG(uploadtest.Canvas(ink, 28, color.NRGBA{0x11, 0x11, 0x11, 0})))
		in[3].data = append(in[3].data, uploadtest.EncodePNG(page))
	}
	pil, err := os.ReadFile("../../bench/wrk/digit.png")
	if err != nil {
		b.Fatal(err)
	}
	return append(in, decodeBenchInput{name: "pil-gray=28x28", data: [][]byte{pil}})
}
