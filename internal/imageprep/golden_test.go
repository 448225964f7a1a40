package imageprep

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

// goldenFile holds a hash of Prepare's output for a few digits of every upload form and every seed image, in both
// modes. TestPrepareGolden rewrites it with -update.
const goldenFile = "testdata/prepare.golden"

// TestPrepareGolden checks that Prepare's vectors stay bit-identical: a change meant to reshape the code must not
// move a single value, and a change meant to alter the output shows here which forms it touched (then rerun TestForms
// and the accuracy table, and rewrite the file with go test -run TestPrepareGolden -update).
//
// The hashes are those of amd64. Other architectures fuse multiplications and additions into FMA instructions,
// which rounds differently in the last bit, both here and in the forms' generators.
func TestPrepareGolden(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skipf("the golden hashes are those of amd64; %s rounds fused multiply-adds differently", runtime.GOARCH)
	}
	specs := []struct {
		name string
		in   Spec
	}{
		{"mnist 28x28", mnistInput},
		{"mnist 20x32", Spec{Width: 20, Height: 32, Mode: ModeMNIST}},
		{"resize 28x28", Spec{Width: 28, Height: 28, Mode: ModeResize}},
		{"resize 7x5", Spec{Width: 7, Height: 5, Mode: ModeResize}},
	}
	set := mnistTest(t)
	var got []string
	for fi, f := range uploadtest.All() {
		n := 3
		if f.Large {
			n = 1
		}
		rng := rand.New(rand.NewPCG(uint64(fi), 7))
		uploads := make([][]byte, n)
		for k := range uploads {
			uploads[k] = f.Make(set.Image(k*101), rng)
		}
		for _, s := range specs {
			got = append(got, s.name+"\t"+f.Name+"\t"+hashPrepared(t, uploads, s.in))
		}
	}
	for _, name := range seedFiles {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range specs {
			got = append(got, s.name+"\t"+name+"\t"+hashPrepared(t, [][]byte{data}, s.in))
		}
	}
	if *update {
		if err := os.WriteFile(goldenFile, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	data, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, h, ok := cutLast(sc.Text()); ok {
			want[k] = h
		}
	}
	if len(want) != len(got) {
		t.Errorf("%s has %d hashes; want %d (rewrite it with -update)", goldenFile, len(want), len(got))
	}
	for _, line := range got {
		k, h, _ := cutLast(line)
		if want[k] != h {
			t.Errorf("%s: got hash %s; want %s", strings.ReplaceAll(k, "\t", ", "), h, want[k])
		}
	}
}

// hashPrepared prepares every upload and returns a hash of the bits of all the vectors.
func hashPrepared(t *testing.T, uploads [][]byte, in Spec) string {
	t.Helper()
	var p Preparer
	dst := make([]float32, in.Width*in.Height)
	h := sha256.New()
	for _, data := range uploads {
		if _, err := p.PrepareBytes(dst, data, Limits{}, in); err != nil {
			t.Fatal(err)
		}
		for _, v := range dst {
			h.Write(binary.LittleEndian.AppendUint32(nil, math.Float32bits(v)))
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil)[:12])
}

func cutLast(line string) (key, hash string, ok bool) {
	i := strings.LastIndexByte(line, '\t')
	if i < 0 {
		return "", "", false
	}
	return line[:i], line[i+1:], true
}
