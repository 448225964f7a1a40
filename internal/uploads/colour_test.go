package uploads

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

func petsArchive(t testing.TB, perClass int, gray bool) []byte {
	t.Helper()
	pets := uploadtest.Pets(perClass, rand.New(rand.NewPCG(5, 6)))
	if gray {
		for i := range pets {
			pets[i].Data = uploadtest.EncodePNG(uploadtest.ToGray(pets[i].Image))
		}
	}
	return uploadtest.Zip("pets", pets)
}

func TestImportChoosesChannels(t *testing.T) {
	for _, tc := range []struct {
		name string
		gray bool
		opts ImportOptions
		want int
	}{
		{"colour photos with automatic channels are colour", false, ImportOptions{}, 3},
		{"gray photos with automatic channels are gray", true, ImportOptions{}, 1},
		{"colour photos asked for in gray are gray", false, ImportOptions{Channels: 1}, 1},
		{"gray photos asked for in colour are colour", true, ImportOptions{Channels: 3}, 3},
		{"colour photos with the mnist preprocessing are gray", false, ImportOptions{Preprocess: model.PreprocessMNIST}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openStore(t, Limits{})
			info, err := s.Import(context.Background(), petsArchive(t, 6, tc.gray), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if info.Channels != tc.want {
				t.Fatalf("got %d channels; want %d", info.Channels, tc.want)
			}
			again, err := s.Get(info.ID)
			if err != nil || again.Channels != tc.want || again.Input() != info.Input() {
				t.Fatalf("stored info %+v, %v; want %d channels", again, err, tc.want)
			}
			set, err := s.Load(info.ID)
			if err != nil {
				t.Fatal(err)
			}
			if set.Rows != 28 || set.Cols != 28 || set.ChannelCount() != tc.want || set.Features() != info.Input().Size() {
				t.Fatalf("loaded %dx%dx%d, %d features; want 28x28x%d, the input's %d", set.Cols, set.Rows,
					set.ChannelCount(), set.Features(), tc.want, info.Input().Size())
			}
		})
	}
}

func TestImportKeepsTheColourPlanes(t *testing.T) {
	// Every cat is orange (red above blue) and every dog blue-grey (blue above red): the mean of the fur's planes
	// tells them apart, so the planes are stored in their order.
	s, _ := openStore(t, Limits{})
	info, err := s.Import(context.Background(), petsArchive(t, 10, false), ImportOptions{Width: 16, Height: 16})
	if err != nil {
		t.Fatal(err)
	}
	set, err := s.Load(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range set.Len() {
		img := set.Image(i)
		// The centre of the picture is the face.
		var r, b int
		for y := 6; y < 10; y++ {
			for x := 6; x < 10; x++ {
				r += int(img[y*16+x])
				b += int(img[2*256+y*16+x])
			}
		}
		if cat := set.Classes[set.Y[i]] == "cat"; cat != (r > b) {
			t.Errorf("example %d (%s): red %d, blue %d at the centre", i, set.Classes[set.Y[i]], r, b)
		}
	}
}

func TestImportRefusesChannelsItCannotMake(t *testing.T) {
	s, _ := openStore(t, Limits{})
	for _, tc := range []struct {
		opts ImportOptions
		want string
	}{
		{ImportOptions{Channels: 3, Preprocess: model.PreprocessMNIST}, "gray only"},
		{ImportOptions{Channels: 2}, "want 1 (gray) or 3 (colour)"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := s.Import(context.Background(), petsArchive(t, 2, false), tc.opts)
			if kindOf(err) != "ErrInvalid" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an invalid upload saying %q", err, tc.want)
			}
		})
	}
	t.Run("colour from IDX", func(t *testing.T) {
		pix := make([]byte, 4*28*28)
		_, err := s.ImportIDX(context.Background(), idxBytes(t, []int{4, 28, 28}, pix, false),
			idxBytes(t, []int{4}, []byte{0, 1, 0, 1}, false), ImportOptions{Channels: 3, Preprocess: model.PreprocessResize})
		if kindOf(err) != "ErrInvalid" || !strings.Contains(err.Error(), "IDX images are gray") {
			t.Fatalf("got %v; want an invalid upload saying IDX images are gray", err)
		}
	})
}
