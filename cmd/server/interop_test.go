package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/mnisttest"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// Tolerance of the interop comparisons: the largest absolute difference allowed between two tools' probabilities.
const interopTolerance = 1e-5

// TestInteropWithPyTorchAndONNXRuntime proves the ONNX import and export with the real tools: MLPs trained and
// exported by PyTorch are imported through POST /models and must give PyTorch's probabilities through /predict on
// 1,000 MNIST test images; the default model and a sigmoid model trained here, exported through
// GET /models/{version}/onnx, must pass onnx.checker and give /predict's probabilities in ONNX Runtime.
//
// It runs only with PERCEPTRON_INTEROP=1 (.ci/interop sets it, with PERCEPTRON_ORT_DIR, the folder whose
// node_modules holds onnxruntime-node); then a missing tool is a failure, not a skip.
func TestInteropWithPyTorchAndONNXRuntime(t *testing.T) {
	if os.Getenv("PERCEPTRON_INTEROP") != "1" {
		t.Skip("set PERCEPTRON_INTEROP=1 (bash .ci/interop) to run against PyTorch and ONNX Runtime")
	}
	const python = "/usr/bin/python3" // Debian's, whose dist-packages hold python3-torch and python3-onnx
	script, _ := filepath.Abs("testdata/interop/torch_models.py")
	ortScript, _ := filepath.Abs("testdata/interop/ort_run.js")
	if out, err := exec.Command(python, "-c", "import torch, onnx, numpy").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import torch, onnx and numpy (apt-get install python3-torch python3-onnx): %v\n%s", python, err, out)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed")
	}
	modules := filepath.Join(os.Getenv("PERCEPTRON_ORT_DIR"), "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "onnxruntime-node", "package.json")); err != nil {
		t.Fatalf("onnxruntime-node is not installed under PERCEPTRON_ORT_DIR=%q: %v", os.Getenv("PERCEPTRON_ORT_DIR"), err)
	}

	dir := t.TempDir()
	const trainN, testN = 10000, 1000
	writeInputs(t, filepath.Join(dir, "train.f32"), mnisttest.Train(t), trainN)
	if err := os.WriteFile(filepath.Join(dir, "train.labels"), mnisttest.Train(t).Y[:trainN], 0o644); err != nil {
		t.Fatal(err)
	}
	inputs := writeInputs(t, filepath.Join(dir, "test.f32"), mnisttest.Test(t), testN)

	out, err := exec.Command(python, script, "build", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("torch_models.py build: %v\n%s", err, out)
	}
	t.Logf("PyTorch:\n%s", out)

	// A sigmoid model trained here, in the registry before the server starts.
	modelDir := t.TempDir()
	var trained bytes.Buffer
	getenv := func(k string) string { return map[string]string{"MODEL_DIR": modelDir, "DATA_DIR": t.TempDir()}[k] }
	if err := run(context.Background(), []string{"server", "train", "-hidden", "64", "-activation", "sigmoid", "-epochs", "1",
		"-limit", "5000", "-activate", "never", "-quiet"}, getenv, nil, &trained, io.Discard); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`stored version (\S+)`).FindStringSubmatch(trained.String())
	if m == nil {
		t.Fatalf("train printed %q; want the stored version", trained.String())
	}
	sigmoidVersion := m[1]

	const token = "interop-token"
	base, _ := startServer(t, map[string]string{"MODEL_DIR": modelDir, "ADMIN_TOKEN": token})
	c := &interopClient{t: t, base: base, token: token}
	def, _ := model.Default()

	for _, name := range []string{"relu-softmax", "tanh-logits", "flatten-1x28x28", "view-1x28x28"} {
		t.Run("PyTorch "+name+" imported", func(t *testing.T) {
			c.t = t
			file, err := os.ReadFile(filepath.Join(dir, name+".onnx"))
			if err != nil {
				t.Fatal(err)
			}
			modelName, version := c.importONNX(file)
			ours := c.predict(inputs, testN, modelName, version)
			torch := readFloats(t, filepath.Join(dir, name+".torch.f32"))
			compare(t, "perceptron "+version, ours, "PyTorch", torch, testN)
		})
	}
	for _, version := range []string{def.Version, sigmoidVersion} {
		t.Run("perceptron "+version+" exported", func(t *testing.T) {
			c.t = t
			var e struct{ Name string }
			if err := json.Unmarshal(c.do("POST", "/models/"+version+"/activate", "", nil, http.StatusOK), &e); err != nil {
				t.Fatal(err)
			}
			ours := c.predict(inputs, testN, e.Name, version)
			file := filepath.Join(dir, version+".onnx")
			if err := os.WriteFile(file, c.do("GET", "/models/"+version+"/onnx", "", nil, http.StatusOK), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(python, script, "check", file).CombinedOutput(); err != nil {
				t.Fatalf("onnx.checker refuses the export: %v\n%s", err, out)
			} else {
				t.Logf("onnx.checker: %s", out)
			}
			cmd := exec.Command(node, ortScript, file, filepath.Join(dir, "test.f32"), file+".ort.f32")
			cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("ONNX Runtime: %v\n%s", err, out)
			}
			t.Logf("ONNX Runtime: %s", out)
			compare(t, "perceptron "+version, ours, "ONNX Runtime", readFloats(t, file+".ort.f32"), testN)
		})
	}
}

// compare checks that two tools' probabilities for n examples of 10 classes pick the same class for every example and
// differ by less than interopTolerance, and logs the largest difference.
func compare(t *testing.T, aName string, a []float32, bName string, b []float32, n int) {
	t.Helper()
	const classes = 10
	if len(a) != n*classes || len(b) != n*classes {
		t.Fatalf("%d probabilities from %s and %d from %s; want %d", len(a), aName, len(b), bName, n*classes)
	}
	worst, at, disagree := 0.0, 0, 0
	for i := range n {
		ra, rb := a[i*classes:(i+1)*classes], b[i*classes:(i+1)*classes]
		if model.Argmax(ra) != model.Argmax(rb) {
			disagree++
			t.Errorf("example %d: %s says %d, %s says %d", i, aName, model.Argmax(ra), bName, model.Argmax(rb))
		}
		for j := range ra {
			if d := math.Abs(float64(ra[j]) - float64(rb[j])); d > worst {
				worst, at = d, i*classes+j
			}
		}
	}
	t.Logf("%s against %s on %d examples: largest |difference| %.3g (example %d class %d: %v vs %v); argmax differs on %d",
		aName, bName, n, worst, at/classes, at%classes, a[at], b[at], disagree)
	if worst >= interopTolerance {
		t.Errorf("largest difference %.3g; want below %g", worst, interopTolerance)
	}
}

// writeInputs writes the first n examples of s as little-endian float32 rows, the values the server computes from
// them, and returns them.
func writeInputs(t *testing.T, path string, s *dataset.Set, n int) []float32 {
	t.Helper()
	x := make([]float32, n*s.Features())
	for i := range n {
		s.Inputs(x[i*s.Features():(i+1)*s.Features()], i)
	}
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return x
}

func readFloats(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// interopClient talks to the server under test.
type interopClient struct {
	t           *testing.T
	base, token string
}

func (c *interopClient) do(method, path, contentType string, body []byte, want int) []byte {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d %s; want %d", method, path, resp.StatusCode, data, want)
	}
	return data
}

// importONNX stores file through POST /models, activated, and returns its model's name and its version.
func (c *interopClient) importONNX(file []byte) (name, version string) {
	c.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	w, _ := mw.CreateFormFile("model", "model.onnx")
	w.Write(file)
	mw.WriteField("activate", "always")
	mw.Close()
	var e struct{ Name, Version string }
	if err := json.Unmarshal(c.do("POST", "/models", mw.FormDataContentType(), b.Bytes(), http.StatusCreated), &e); err != nil {
		c.t.Fatal(err)
	}
	return e.Name, e.Version
}

// predict sends n input rows to POST /predict?model=name as JSON, in requests of 200, checks that version answered,
// and returns the probabilities of the ten classes "0".."9" for each.
func (c *interopClient) predict(x []float32, n int, name, version string) []float32 {
	c.t.Helper()
	const per = 200
	width := len(x) / n
	out := make([]float32, 0, n*10)
	for start := 0; start < n; start += per {
		var b strings.Builder
		b.WriteString(`{"inputs":[`)
		for i := start; i < min(start+per, n); i++ {
			if i > start {
				b.WriteByte(',')
			}
			b.WriteByte('[')
			for j, v := range x[i*width : (i+1)*width] {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strconv.FormatFloat(float64(v), 'g', -1, 32))
			}
			b.WriteByte(']')
		}
		b.WriteString("]}")
		var resp struct {
			Model       struct{ Name, Version string }
			Predictions []struct{ Probabilities map[string]float64 }
		}
		if err := json.Unmarshal(c.do("POST", "/predict?model="+url.QueryEscape(name), "application/json", []byte(b.String()), http.StatusOK), &resp); err != nil {
			c.t.Fatal(err)
		}
		if resp.Model.Version != version {
			c.t.Fatalf("/predict?model=%s answered with %s %s; want version %s", name, resp.Model.Name, resp.Model.Version, version)
		}
		for _, p := range resp.Predictions {
			for k := range 10 {
				v, ok := p.Probabilities[strconv.Itoa(k)]
				if !ok {
					c.t.Fatalf("no probability for class %d in %v", k, p.Probabilities)
				}
				out = append(out, float32(v))
			}
		}
	}
	if len(out) != n*10 {
		c.t.Fatalf("%d probabilities for %d examples", len(out), n)
	}
	return out
}
