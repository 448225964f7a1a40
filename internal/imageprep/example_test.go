package imageprep_test

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"

	"github.com/perceptron-dev/perceptron/internal/imageprep"
)

// A photo of a dark stroke on light paper, off-centre in a wider picture, becomes an MNIST-style input: a bright
// stroke on black, 20 pixels tall, centred by its centre of mass.
func Example() {
	img := image.NewGray(image.Rect(0, 0, 120, 90))
	for i := range img.Pix {
		img.Pix[i] = 230 // paper
	}
	for y := 10; y < 70; y++ {
		for x := 80; x < 86; x++ {
			img.SetGray(x, y, color.Gray{Y: 30}) // ink, right of centre
		}
	}
	var file bytes.Buffer
	if err := png.Encode(&file, img); err != nil {
		panic(err)
	}

	var p imageprep.Preparer                                                 // one per worker: it reuses its buffers
	spec := imageprep.Spec{Width: 28, Height: 28, Mode: imageprep.ModeMNIST} // as the model file records it
	x := make([]float32, spec.Width*spec.Height)
	format, err := p.PrepareBytes(x, file.Bytes(), imageprep.Limits{MaxPixels: 1 << 20}, spec)
	if err != nil {
		panic(err)
	}
	fmt.Println(format)
	for row := range 28 {
		for _, v := range x[row*28 : row*28+28] {
			switch {
			case v > 0.5:
				fmt.Print("#")
			case v > 0:
				fmt.Print("+")
			default:
				fmt.Print(".")
			}
		}
		fmt.Println()
	}
	// Output:
	// png
	// ............................
	// ............................
	// ............................
	// ............................
	// ............................
	// ..............##............
	// ..............##............
	// ..............##............
	// ..............##............
	// ..............##............
	// ..............##............
	// ..............##............
	// ..............##............
	// ..............##............
	// ..............##............
	// ..............##............
	// ..............##............
	// ..............##............
	// ..............##............
	// ..............##............
	// ..............##............
	// ..............##............
	// ..............##............
	// ..............##............
	// ..............##............
	// ............................
	// ............................
	// ............................
}

// Decode's errors say what went wrong in terms a server can answer with: here, a 100-byte file claiming
// 100000x100000 pixels is refused from its header alone.
func ExampleDecode() {
	var b bytes.Buffer
	png.Encode(&b, image.NewGray(image.Rect(0, 0, 1, 1)))
	data := b.Bytes()
	// Overwrite the width and height in the IHDR chunk; the CRC is not even checked before the size is.
	copy(data[16:], []byte{0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0})

	_, _, err := imageprep.Decode(data, imageprep.Limits{})
	fmt.Println(errors.Is(err, imageprep.ErrTooLarge))
	fmt.Println(err)

	_, _, err = imageprep.Decode([]byte("%PDF-1.7"), imageprep.Limits{})
	fmt.Println(errors.Is(err, imageprep.ErrUnsupported))
	// Output:
	// true
	// imageprep: image too large: 100000x100000 pixels, more than the limit of 16777216
	// true
}
