package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testNetwork(t testing.TB) *Network {
	t.Helper()
	labels := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	n, err := New(Info{
		Name: "test", Version: "v1", Created: time.Date(2026, 11, 27, 10, 15, 0, 0, time.UTC),
		Layers: []int{784, 16, 10}, Activation: Tanh, Labels: labels,
		Input:   Input{Width: 28, Height: 28, Preprocess: PreprocessMNIST},
		Dataset: "mnist", Metrics: Metrics{TestAccuracy: 0.9},
		Hyperparameters: json.RawMessage(`{"epochs":3}`),
	}, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFileRoundTrip(t *testing.T) {
	n := testNetwork(t)
	data, err := Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != n.Name || got.Version != n.Version || !got.Created.Equal(n.Created) || got.Activation != Tanh ||
		got.Input != n.Input || got.Dataset != "mnist" || got.Metrics != n.Metrics || string(got.Hyperparameters) != `{"epochs":3}` {
		t.Errorf("info after round trip = %+v; want %+v", got.Info, n.Info)
	}
	for i := range n.MLP.Params {
		if got.MLP.Params[i] != n.MLP.Params[i] {
			t.Fatalf("param %d = %v; want %v", i, got.MLP.Params[i], n.MLP.Params[i])
		}
	}
	path := filepath.Join(t.TempDir(), "m.pcpt")
	if err := Save(path, n); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
}

// build assembles a model file from parts with a correct checksum, to test checks that lie behind the checksum.
func build(magic string, version uint32, header []byte, count uint64, params []byte) []byte {
	var b bytes.Buffer
	b.WriteString(magic)
	binary.Write(&b, binary.LittleEndian, version)
	binary.Write(&b, binary.LittleEndian, uint32(len(header)))
	b.Write(header)
	binary.Write(&b, binary.LittleEndian, count)
	b.Write(params)
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}

func TestDecodeRefusesBadFiles(t *testing.T) {
	n := testNetwork(t)
	good, err := Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	header, _ := json.Marshal(n.Info)
	params := make([]byte, 4*len(n.MLP.Params))
	count := uint64(len(n.MLP.Params))
	withHeader := func(edit func(*Info)) []byte {
		info := n.Info
		info.Labels = append([]string(nil), n.Labels...)
		edit(&info)
		h, _ := json.Marshal(info)
		return build(fileMagic, FormatVersion, h, count, params)
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x10
	nan := bytes.Clone(params)
	binary.LittleEndian.PutUint32(nan[8:], math.Float32bits(float32(math.NaN())))
	oversizedHeader := bytes.Clone(good)
	binary.LittleEndian.PutUint32(oversizedHeader[12:], MaxHeaderBytes+1)

	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty file", nil, "truncated"},
		{"not a model", []byte("PNG\x89 this is some other file format"), "bad magic"},
		{"truncated after the magic", good[:10], "truncated"},
		{"truncated in the header", good[:100], "truncated"},
		{"truncated in the weights", good[:len(good)/2], "checksum"},
		{"truncated checksum", good[:len(good)-1], "checksum"},
		{"one flipped bit", flipped, "checksum"},
		{"trailing bytes", append(bytes.Clone(good), 0), "checksum"},
		{"newer format version", build(fileMagic, 2, header, count, params), "format version 2"},
		{"oversized header", oversizedHeader, "header of"},
		{"header not JSON", build(fileMagic, 1, []byte("{nope"), count, params), "header"},
		{"unknown header field", withHeaderRaw(header, `"surprise":1,`, count, params), "unknown field"},
		{"fewer weights than the architecture needs", build(fileMagic, 1, header, count-1, params[:len(params)-4]), "needs"},
		{"count disagrees with payload", build(fileMagic, 1, header, count, params[:len(params)-4]), "needs"},
		{"labels disagree with the output layer", withHeader(func(i *Info) { i.Labels = i.Labels[:9] }), "labels"},
		{"input size disagrees with the first layer", withHeader(func(i *Info) { i.Input.Width = 27 }), "input"},
		{"invalid architecture", withHeader(func(i *Info) { i.Layers = []int{784, 0, 10} }), "width"},
		{"unknown preprocessing", withHeader(func(i *Info) { i.Input.Preprocess = "magic" }), "preprocessing"},
		{"NaN weight", build(fileMagic, 1, header, count, nan), "NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Unmarshal(tt.data)
			if err == nil {
				t.Fatal("got nil error; want one")
			}
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q; want ErrFormat mentioning %q", err, tt.want)
			}
		})
	}
}

// withHeaderRaw inserts raw JSON text at the start of the header object.
func withHeaderRaw(header []byte, insert string, count uint64, params []byte) []byte {
	h := append([]byte("{"+insert), header[1:]...)
	return build(fileMagic, FormatVersion, h, count, params)
}

func TestLoadRefusesOversizedFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.pcpt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	// A sparse file: the limit must be enforced before reading it.
	if err := os.Truncate(path, MaxFileBytes+1); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("error %v; want ErrFormat about the size limit", err)
	}
}

func TestSaveLeavesNoTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	n := testNetwork(t)
	for range 3 {
		if err := Save(filepath.Join(dir, "m.pcpt"), n); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries after saving; want 1", len(entries))
	}
}

func FuzzUnmarshal(f *testing.F) {
	n := testNetwork(f)
	good, _ := Marshal(n)
	f.Add(good)
	f.Add(good[:200])
	f.Add([]byte(fileMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Unmarshal(data)
		if err != nil {
			return
		}
		// Anything accepted must be usable.
		var ws Workspace[float32]
		m.Forward(make([]float32, m.MLP.Inputs()), 1, &ws)
	})
}

func TestOriginRoundTripsAndOldFilesAreUnchanged(t *testing.T) {
	t.Run("the embedded default model, which has no origin, re-encodes to the same bytes", func(t *testing.T) {
		n, err := Default()
		if err != nil {
			t.Fatal(err)
		}
		if n.Origin != nil {
			t.Fatalf("default model origin = %+v; want none", n.Origin)
		}
		data, err := Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, defaultModel) {
			t.Errorf("re-encoded default model differs from the embedded file (%d vs %d bytes)", len(data), len(defaultModel))
		}
		if v := NewVersion(n.Created, n.VersionDigest()); v != n.Version {
			t.Errorf("version recomputed from the weights = %s; want %s", v, n.Version)
		}
	})
	t.Run("an imported model keeps its origin through the file", func(t *testing.T) {
		n := testNetwork(t)
		n.Origin = &Origin{Format: "onnx", Producer: "pytorch", ProducerVersion: "1.13.1", Opset: 17, SHA256: "ab12"}
		data, err := Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Unmarshal(data)
		if err != nil {
			t.Fatal(err)
		}
		if got.Origin == nil || *got.Origin != *n.Origin {
			t.Errorf("origin after round trip = %+v; want %+v", got.Origin, n.Origin)
		}
		if c := got.Clone(); c.Origin == got.Origin || *c.Origin != *got.Origin {
			t.Errorf("Clone shares or changes the origin: %p %p", c.Origin, got.Origin)
		}
	})
}
