package check

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// server is what the manifests must agree with, read from the server's own sources rather than copied here.
type server struct {
	config     map[string]bool   // environment variable names (cmd/server/config.go)
	routes     map[string]bool   // paths of api/openapi.yaml, which a test of the server checks against its router
	trainFlags map[string]bool   // flags of `server train` (cmd/server/train.go)
	user       string            // the Dockerfile's USER, "uid:gid"
	exposed    map[int32]bool    // the Dockerfile's EXPOSE
	imageEnv   map[string]string // the Dockerfile's ENV in the runtime stage
}

// runtimeEnv are variables read by the Go runtime rather than by the server's configuration.
var runtimeEnv = map[string]bool{"GOMAXPROCS": true, "GOMEMLIMIT": true, "GODEBUG": true}

var (
	configEnv = regexp.MustCompile(`env: "([A-Z0-9_]+)"`)
	// A flag definition: fs.StringVar(&r.Dataset, "dataset", ..., fs.Func("hidden", ..., fs.Bool("quiet", ...
	trainFlag = regexp.MustCompile(`fs\.[A-Za-z0-9]+\((?:&[A-Za-z0-9_.]+, )?"([a-z0-9_-]+)"`)
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func loadServer(t *testing.T) server {
	t.Helper()
	s := server{config: map[string]bool{}, routes: map[string]bool{}, trainFlags: map[string]bool{},
		exposed: map[int32]bool{}, imageEnv: map[string]string{}}

	for _, m := range configEnv.FindAllStringSubmatch(read(t, "../../cmd/server/config.go"), -1) {
		s.config[m[1]] = true
	}
	// A guard against the pattern going stale: these names are documented in the README and cannot change.
	for _, name := range []string{"ADDR", "ADMIN_TOKEN", "MODEL_DIR", "DATA_DIR", "SHUTDOWN_TIMEOUT"} {
		if !s.config[name] {
			t.Fatalf("cmd/server/config.go: found no `env: %q`; the pattern %s is out of date", name, configEnv)
		}
	}

	var spec struct {
		Paths map[string]any `json:"paths"`
	}
	if err := yaml.Unmarshal([]byte(read(t, "../../api/openapi.yaml")), &spec); err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	for p := range spec.Paths {
		s.routes[p] = true
	}
	if !s.routes["/healthz"] {
		t.Fatalf("api/openapi.yaml: no /healthz among %d paths", len(spec.Paths))
	}

	for _, m := range trainFlag.FindAllStringSubmatch(read(t, "../../cmd/server/train.go"), -1) {
		s.trainFlags[m[1]] = true
	}
	if !s.trainFlags["dataset"] || !s.trainFlags["model-dir"] {
		t.Fatalf("cmd/server/train.go: flags -dataset and -model-dir not found; the pattern %s is out of date", trainFlag)
	}

	// The runtime stage is everything after the last FROM; continuation lines are joined first.
	dockerfile := strings.ReplaceAll(read(t, "../../Dockerfile"), "\\\n", " ")
	lines := strings.Split(dockerfile, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(lines[i])), "FROM ") {
			lines = lines[i:]
			break
		}
	}
	for _, line := range lines {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "USER":
			s.user = fields[1]
		case "EXPOSE":
			for _, f := range fields[1:] {
				port, err := strconv.ParseInt(strings.TrimSuffix(f, "/tcp"), 10, 32)
				if err != nil {
					t.Fatalf("Dockerfile: EXPOSE %s: %v", f, err)
				}
				s.exposed[int32(port)] = true
			}
		case "ENV":
			for _, f := range fields[1:] {
				if k, v, ok := strings.Cut(f, "="); ok {
					s.imageEnv[k] = v
				}
			}
		}
	}
	if s.user == "" || len(s.exposed) == 0 {
		t.Fatalf("Dockerfile: the runtime stage has no USER or no EXPOSE")
	}
	return s
}
