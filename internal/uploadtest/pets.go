package uploadtest

import (
	"archive/zip"
	"bytes"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
)

// LabelledImage is one picture of a labelled set, as a user would put it in a class folder.
type LabelledImage struct {
	Label string
	Image *image.RGBA
	Data  []byte // the picture encoded as PNG or JPEG
}

// PetClasses are the classes Pets draws, in the order an upload lists them.
var PetClasses = []string{"cat", "dog"}

// Pets draws perClass cartoon cat and dog faces of each class, in random order, from rng: a set whose classes differ
// by colour and by shape, as a colour model's tests need. A cat is orange with pointed ears on top of its head; a dog
// is blue-grey with floppy ears hanging at the sides. The fur's luminance is drawn from the same range for both
// classes, so a gray model sees only the shape, which the varied size and position of the face, the coloured and
// shaded backgrounds of every luminance and the sensor noise blur at a model's small input size; a colour model sees
// the hue as well. Pictures are 40 to 120 pixels a side, PNG or JPEG.
func Pets(perClass int, rng *rand.Rand) []LabelledImage {
	out := make([]LabelledImage, 0, 2*perClass)
	for range perClass {
		for _, label := range PetClasses {
			img := pet(label == "cat", rng)
			var data []byte
			if rng.IntN(2) == 0 {
				data = EncodePNG(img)
			} else {
				data = EncodeJPEG(img, 80+rng.IntN(15))
			}
			out = append(out, LabelledImage{Label: label, Image: img, Data: data})
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// Zip makes the archive a user uploads to POST /datasets: one folder per label, inside a wrapper folder named dir,
// as zipping a folder produces.
func Zip(dir string, imgs []LabelledImage) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i, im := range imgs {
		ext := "png"
		if bytes.HasPrefix(im.Data, []byte{0xff, 0xd8}) {
			ext = "jpg"
		}
		w, err := zw.Create(fmt.Sprintf("%s/%s/%04d.%s", dir, im.Label, i, ext))
		if err != nil {
			panic(err) // writing to memory cannot fail
		}
		if _, err := w.Write(im.Data); err != nil {
			panic(err)
		}
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// withLuma scales the hue hue (0..255 per channel) to have BT.601 luminance l (0..255), clamping where a channel
// overflows.
func withLuma(hue [3]float64, l float64) [3]float64 {
	y := 0.299*hue[0] + 0.587*hue[1] + 0.114*hue[2]
	return [3]float64{hue[0] * l / y, hue[1] * l / y, hue[2] * l / y}
}

// pet draws one face: the fur's hue by class, its luminance and everything else from rng.
func pet(cat bool, rng *rand.Rand) *image.RGBA {
	w, h := 40+rng.IntN(81), 40+rng.IntN(81)
	s := float64(min(w, h))
	furL := 70 + 120*rng.Float64()
	var fur [3]float64
	if cat {
		fur = withLuma([3]float64{230 + 25*rng.Float64(), 130 + 40*rng.Float64(), 30 + 30*rng.Float64()}, furL)
	} else {
		fur = withLuma([3]float64{70 + 30*rng.Float64(), 110 + 30*rng.Float64(), 200 + 55*rng.Float64()}, furL)
	}
	// The background: any colour of any luminance, with a linear shading across the picture.
	bg0 := [3]float64{255 * rng.Float64(), 255 * rng.Float64(), 255 * rng.Float64()}
	bg1 := [3]float64{255 * rng.Float64(), 255 * rng.Float64(), 255 * rng.Float64()}
	angle := 2 * math.Pi * rng.Float64()
	dx, dy := math.Cos(angle), math.Sin(angle)

	r := s * (0.2 + 0.1*rng.Float64())
	cx := float64(w)/2 + s*0.12*(2*rng.Float64()-1)
	cy := float64(h)/2 + s*0.1*(2*rng.Float64()-1)
	tilt := 0.25 * (2*rng.Float64() - 1)
	sin, cos := math.Sin(tilt), math.Cos(tilt)
	earH := r * (0.7 + 0.3*rng.Float64())
	inFace := func(x, y float64) (fur, eye bool) {
		// Coordinates in the face's frame, r units, y down.
		u := (cos*(x-cx) + sin*(y-cy)) / r
		v := (-sin*(x-cx) + cos*(y-cy)) / r
		if math.Hypot(u+0.38, v+0.15) < 0.13 || math.Hypot(u-0.38, v+0.15) < 0.13 {
			return false, true
		}
		if u*u+v*v < 1 {
			return true, false
		}
		if cat {
			// Pointed ears: triangles standing on the top of the head, apex at height earH.
			for _, side := range []float64{-1, 1} {
				eu := u*side - 0.55
				top := -0.75 - earH/r
				if v < -0.5 && v > top {
					half := 0.35 * (v - top) / (-0.5 - top)
					if math.Abs(eu) < half {
						return true, false
					}
				}
			}
			return false, false
		}
		// Floppy ears: long ellipses hanging beside the head.
		for _, side := range []float64{-1, 1} {
			eu, ev := (u*side-1.0)/0.32, (v-0.25)/(0.45+0.3*earH/r)
			if eu*eu+ev*ev < 1 {
				return true, false
			}
		}
		return false, false
	}
	return fill(w, h, 8, rng, func(x, y int) [3]float64 {
		isFur, eye := inFace(float64(x)+0.5, float64(y)+0.5)
		switch {
		case eye:
			return [3]float64{20, 20, 20}
		case isFur:
			return fur
		}
		t := (dx*float64(x)/float64(w)+dy*float64(y)/float64(h))/2 + 0.5
		return [3]float64{bg0[0]*(1-t) + bg1[0]*t, bg0[1]*(1-t) + bg1[1]*t, bg0[2]*(1-t) + bg1[2]*t}
	})
}
