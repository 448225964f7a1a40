package app

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/perceptron-dev/perceptron/"

// layers is the README's package table, the part a test can hold: what each package must never import, directly
// or through another package. A prefix ending in "/" forbids a whole tree.
var layers = map[string][]string{
	// The network and its file format know nothing of how they are served, trained or fed.
	"internal/model": {"net/http", "internal/api", "internal/train", "internal/imageprep", "internal/inference",
		"internal/registry", "internal/app"},
	"internal/gemm": {"internal/"},
	// Small helpers that everything may use, and that therefore use nothing of the service.
	"internal/atomicfile": {"internal/"},
	"internal/randid":     {"internal/"},
	// Test kits speak to the service from outside, over HTTP.
	"internal/apitest": {"internal/"},
	// Preprocessing is model-agnostic: it turns bytes into a vector for a spec it is given.
	"internal/imageprep": {"net/http", "internal/model", "internal/train", "internal/api", "internal/inference",
		"internal/registry", "internal/app"},
	// Serving never imports training.
	"internal/inference": {"net/http", "internal/train", "internal/api", "internal/registry", "internal/app"},
	"internal/registry":  {"net/http", "internal/train", "internal/api", "internal/inference", "internal/app"},
	"internal/train":     {"net/http", "internal/api", "internal/inference", "internal/app"},
	// The S3 store speaks S3 for the registry and nothing else.
	"internal/s3store": {"internal/train", "internal/api", "internal/inference", "internal/app"},
	"internal/api":     {"internal/app", "internal/grpcapi"},
	// The protocol's shared facts know neither transport; the gRPC service is a transport beside the HTTP one.
	"internal/oip":     {"net/http", "internal/api", "internal/grpcapi", "internal/inference", "internal/train", "internal/app"},
	"internal/grpcapi": {"internal/app"},
	// Data sets: the in-memory set and its file format know nothing of networks, uploads or serving; uploads turn
	// archives into sets and never reach into HTTP, training or serving.
	"internal/dataset": {"net/http", "internal/model", "internal/uploads", "internal/imageprep", "internal/train",
		"internal/api", "internal/app"},
	"internal/uploads": {"net/http", "internal/train", "internal/api", "internal/inference", "internal/registry",
		"internal/app"},
	"internal/web": {"internal/"},
}

// TestPackagesImportOnlyWhatTheirLayerAllows fails when a package reaches, directly or transitively, one its row of
// layers forbids, and names the chain of imports that does it.
func TestPackagesImportOnlyWhatTheirLayerAllows(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		imports[f[0]] = f[1:]
	}
	if len(imports[module+"internal/api"]) == 0 {
		t.Fatalf("go list found no imports of internal/api; output:\n%s", out)
	}
	for pkg, forbidden := range layers {
		if _, ok := imports[module+pkg]; !ok {
			t.Errorf("%s: no such package (update layers)", pkg)
			continue
		}
		// Breadth-first over the package's own imports, remembering how each was reached.
		via := map[string]string{module + pkg: ""}
		queue := []string{module + pkg}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			for _, q := range imports[p] {
				if _, seen := via[q]; seen {
					continue
				}
				via[q] = p
				queue = append(queue, q)
				for _, f := range forbidden {
					if forbids(f, q) {
						t.Errorf("%s must not import %s, but does: %s", pkg, f, chain(via, q))
					}
				}
			}
		}
	}
}

// forbids reports whether the rule f (a standard library path, or a module path relative to the module, a trailing
// slash meaning the whole tree) matches the import path q.
func forbids(f, q string) bool {
	if strings.HasPrefix(f, "internal/") {
		f = module + f
	}
	if strings.HasSuffix(f, "/") {
		return strings.HasPrefix(q, f)
	}
	return q == f || strings.HasPrefix(q, f+"/")
}

func chain(via map[string]string, q string) string {
	var c []string
	for ; q != ""; q = via[q] {
		c = append(c, strings.TrimPrefix(q, module))
	}
	for i, j := 0, len(c)-1; i < j; i, j = i+1, j-1 {
		c[i], c[j] = c[j], c[i]
	}
	return strings.Join(c, " -> ")
}
