package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/onnx/onnxtest"
	"github.com/perceptron-dev/perceptron/internal/registry"
)

// runCmd runs the program with args and the given MODEL_DIR, returning its output.
func runCmd(t *testing.T, modelDir string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string {
		return map[string]string{"MODEL_DIR": modelDir, "SOURCE_DATE_EPOCH": "1800000000"}[k]
	}
	err := run(context.Background(), append([]string{"server"}, args...), getenv, strings.NewReader(""), &stdout, &stderr)
	return stdout.String() + stderr.String(), err
}

func TestImportAndExportCommands(t *testing.T) {
	dir, tmp := t.TempDir(), t.TempDir()
	file := filepath.Join(tmp, "mlp.onnx")
	if err := os.WriteFile(file, onnxtest.MLP(1, 784, 16, 10), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, dir, "import", "-onnx", file, "-name", "torch-digits", "-labels", "a,b,c,d,e,f,g,h,i,j")
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	reg, err := registry.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := reg.List()
	if len(list) != 1 || list[0].Name != "torch-digits" || list[0].Labels[9] != "j" || list[0].Origin == nil || list[0].Origin.Producer != "onnxtest" {
		t.Fatalf("registry after import: %+v\n%s", list, out)
	}
	version := list[0].Version
	if !strings.HasPrefix(version, "20270115T080000Z-") || !strings.Contains(out, "stored version "+version) {
		t.Errorf("version %s, output %q; want the SOURCE_DATE_EPOCH time and the version named", version, out)
	}
	if active, _ := reg.ActiveOf("torch-digits"); active != "" {
		t.Errorf("active version %q after an import without -activate; want none", active)
	}

	onnxFile := filepath.Join(tmp, "again.onnx")
	if out, err := runCmd(t, dir, "export", "-model", version, "-out", onnxFile); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	dir2 := t.TempDir()
	if out, err := runCmd(t, dir2, "import", "-onnx", onnxFile, "-activate", "always"); err != nil || !strings.Contains(out, "activated") {
		t.Fatalf("re-import: %v\n%s", err, out)
	}
	reg2, _ := registry.Open(dir2, nil)
	again, _, err := reg2.LoadActiveOf("torch-digits")
	if err != nil {
		t.Fatal(err)
	}
	first, _ := reg.Load(version)
	if again.Version != first.Version || again.Name != "torch-digits" || !slices.Equal(again.MLP.Params, first.MLP.Params) {
		t.Errorf("re-imported %s %s; want %s with the same weights", again.Name, again.Version, first.Version)
	}

	t.Run("exports a model file and the embedded default", func(t *testing.T) {
		def, _ := model.Default()
		pcpt := filepath.Join(tmp, "m.pcpt")
		if err := model.Save(pcpt, def); err != nil {
			t.Fatal(err)
		}
		for _, which := range []string{pcpt, def.Version, ""} {
			if out, err := runCmd(t, t.TempDir(), "export", "-model", which, "-out", filepath.Join(tmp, "d.onnx")); err != nil ||
				!strings.Contains(out, def.Version) {
				t.Errorf("export -model %q: %v\n%s", which, err, out)
			}
		}
	})
	t.Run("refuses a convolution without storing anything", func(t *testing.T) {
		conv := filepath.Join(tmp, "conv.onnx")
		os.WriteFile(conv, onnxtest.Conv(), 0o644)
		dir := t.TempDir()
		out, err := runCmd(t, dir, "import", "-onnx", conv)
		if err == nil || !strings.Contains(err.Error(), "Conv") {
			t.Errorf("import of a convolution: %v\n%s", err, out)
		}
		if des, _ := os.ReadDir(filepath.Join(dir, "versions")); len(des) != 0 {
			t.Errorf("%d files in the registry after a refused import", len(des))
		}
	})
	t.Run("refuses if_better, which needs validation data", func(t *testing.T) {
		if _, err := runCmd(t, t.TempDir(), "import", "-onnx", file, "-activate", "if_better"); err == nil || !strings.Contains(err.Error(), "if_better") {
			t.Errorf("error = %v", err)
		}
	})
}
