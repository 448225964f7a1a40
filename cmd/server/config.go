package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/perceptron-dev/perceptron/internal/api"
	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/s3store"
)

// config is the server's effective configuration. Every field has a flag and an environment variable (named in
// settings, and in the README's configuration table); a flag given on the command line wins over the environment,
// which wins over the default.
type config struct {
	Addr            string
	AdminToken      string
	AdminAddr       string
	GRPCAddr        string
	AdminTokenFile  string
	TrainJobs       int
	TrainPriority   string
	ReplicaID       string
	WatchInterval   time.Duration
	ModelDir        string
	CacheDir        string
	S3              *s3store.Config // from the AWS variables when ModelDir is s3://bucket/prefix
	DefaultModel    string
	MaxLoadedModels int
	DataDir         string
	LogLevel        string
	Workers         int
	MaxBatch        int
	BatchDelay      time.Duration
	QueueSize       int
	MaxBodyBytes    int64
	MaxPixels       int
	MaxImages       int
	MemoryLimit     int64
	PredictTimeout  time.Duration
	ReadTimeout     time.Duration
	ShutdownTimeout time.Duration
	DrainDelay      time.Duration
	BenchFloor      bool
	TrustedProxies  []netip.Prefix
}

// setting describes one configuration field for flags, the environment and the start-up printout.
type setting struct {
	flag, env, def, usage string
	secret                bool
	value                 flag.Value // bound to the config field
}

// value is a flag.Value bound to a field of any type.
type value[T any] struct {
	p      *T
	parse  func(string) (T, error)
	format func(T) string
}

func (v value[T]) Set(s string) error {
	x, err := v.parse(s)
	if err != nil {
		return err
	}
	*v.p = x
	return nil
}

func (v value[T]) String() string {
	if v.p == nil {
		return ""
	}
	return v.format(*v.p)
}

func strVal(p *string) flag.Value {
	return value[string]{p, func(s string) (string, error) { return s, nil }, func(s string) string { return s }}
}
func intVal(p *int) flag.Value { return value[int]{p, strconv.Atoi, strconv.Itoa} }
func int64Val(p *int64) flag.Value {
	return value[int64]{p, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) },
		func(v int64) string { return strconv.FormatInt(v, 10) }}
}

// sizeVal reads a size in bytes with an optional unit (membudget.ParseSize); 0 prints as empty.
func sizeVal(p *int64) flag.Value {
	return value[int64]{p, membudget.ParseSize, func(v int64) string {
		if v == 0 {
			return ""
		}
		return strconv.FormatInt(v, 10)
	}}
}

// boolValue lets a boolean flag be given without a value (-bench-floor).
type boolValue struct{ value[bool] }

func (boolValue) IsBoolFlag() bool { return true }

func boolVal(p *bool) flag.Value {
	return boolValue{value[bool]{p, strconv.ParseBool, strconv.FormatBool}}
}

// prefixesVal reads a comma-separated list of CIDR prefixes; a bare address is a prefix of that one address.
func prefixesVal(p *[]netip.Prefix) flag.Value {
	return value[[]netip.Prefix]{p, func(s string) ([]netip.Prefix, error) {
		var out []netip.Prefix
		for f := range strings.SplitSeq(s, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			if a, err := netip.ParseAddr(f); err == nil {
				out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
				continue
			}
			pfx, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("%q is neither an address nor a CIDR prefix", f)
			}
			out = append(out, pfx.Masked())
		}
		return out, nil
	}, func(ps []netip.Prefix) string {
		s := make([]string, len(ps))
		for i, p := range ps {
			s[i] = p.String()
		}
		return strings.Join(s, ",")
	}}
}

func durVal(p *time.Duration) flag.Value {
	return value[time.Duration]{p, time.ParseDuration, time.Duration.String}
}

func (c *config) settings() []setting {
	return []setting{
		{flag: "addr", env: "ADDR", def: ":8080", usage: "listen address", value: strVal(&c.Addr)},
		{flag: "admin-addr", env: "ADMIN_ADDR", usage: "serve the admin routes (training, models, data sets) on this separate address only, e.g. 127.0.0.1:9090 (empty: on ADDR)", value: strVal(&c.AdminAddr)},
		{flag: "grpc-addr", env: "GRPC_ADDR", def: ":8081", usage: "Open Inference Protocol gRPC listen address (off or an empty -grpc-addr=: no gRPC)", value: strVal(&c.GRPCAddr)},
		{flag: "admin-token", env: "ADMIN_TOKEN", secret: true, usage: "bearer token of the admin routes (unset: a random one is generated and logged once)", value: strVal(&c.AdminToken)},
		{flag: "admin-token-file", env: "ADMIN_TOKEN_FILE", usage: "file holding the admin token (a mounted Secret), used when ADMIN_TOKEN is unset", value: strVal(&c.AdminTokenFile)},
		{flag: "train-priority", env: "TRAIN_PRIORITY", def: "idle", usage: "CPU priority of training jobs: idle (SCHED_IDLE, else nice 19: serving always comes first, and a job waits while the cores are busy) or normal", value: strVal(&c.TrainPriority)},
		{flag: "train-jobs", env: "TRAIN_JOBS", def: "1", usage: "training jobs running at once; each runs on one low-priority thread", value: intVal(&c.TrainJobs)},
		{flag: "replica-id", env: "REPLICA_ID", usage: "this replica's name among those sharing MODEL_DIR, naming the folder of the training jobs it runs; queued jobs belong to MODEL_DIR and run on any replica (default: the host name, a pod's name)", value: strVal(&c.ReplicaID)},
		{flag: "watch-interval", env: "WATCH_INTERVAL", def: "1s", usage: "how often to check MODEL_DIR for a newly activated version (replicas converge within it)", value: durVal(&c.WatchInterval)},
		{flag: "model-dir", env: "MODEL_DIR", def: "./models", usage: "model registry: a folder, or s3://bucket/prefix for an S3-compatible bucket (endpoint, region and credentials from the standard AWS_* variables and files; S3_FORCE_PATH_STYLE=true for gateways that need it)", value: strVal(&c.ModelDir)},
		{flag: "cache-dir", env: "CACHE_DIR", usage: "where versions downloaded from an s3:// MODEL_DIR are cached (16 versions and 1 GiB at most, least recently used out first), with the pointers last read (empty: a folder under the system's temporary directory)", value: strVal(&c.CacheDir)},
		{flag: "default-model", env: "DEFAULT_MODEL", def: "mnist-mlp", usage: "the model name served by routes that name none (its active version, or the embedded model for mnist-mlp)", value: strVal(&c.DefaultModel)},
		{flag: "max-loaded-models", env: "MAX_LOADED_MODELS", def: "4", usage: "models (or versions) kept loaded to serve at most, the default one included; the least recently used one no request holds makes room", value: intVal(&c.MaxLoadedModels)},
		{flag: "data-dir", env: "DATA_DIR", def: "./data", usage: "data set folder", value: strVal(&c.DataDir)},
		{flag: "log-level", env: "LOG_LEVEL", def: "info", usage: "debug (console format), info, warn or error (JSON)", value: strVal(&c.LogLevel)},
		{flag: "workers", env: "WORKERS", def: strconv.Itoa(runtime.GOMAXPROCS(0)), usage: "inference worker goroutines (default GOMAXPROCS)", value: intVal(&c.Workers)},
		{flag: "max-batch", env: "MAX_BATCH", def: strconv.Itoa(inference.DefaultMaxBatch), usage: "images per forward pass at most", value: intVal(&c.MaxBatch)},
		{flag: "batch-delay", env: "BATCH_DELAY", def: "0s", usage: "how long a worker with a partial batch waits for more while requests keep arriving (0: never)", value: durVal(&c.BatchDelay)},
		{flag: "queue-size", env: "QUEUE_SIZE", def: "0", usage: "images waiting for a worker at most, beyond which requests get 503 (0: 16 full batches per worker)", value: intVal(&c.QueueSize)},
		{flag: "max-body-bytes", env: "MAX_BODY_BYTES", def: strconv.Itoa(api.DefaultMaxBodyBytes), usage: "request body size limit in bytes", value: int64Val(&c.MaxBodyBytes)},
		{flag: "max-pixels", env: "MAX_PIXELS", def: strconv.Itoa(api.DefaultMaxPixels), usage: "width x height limit per image, checked before decoding", value: intVal(&c.MaxPixels)},
		{flag: "memory-limit", env: "MEMORY_LIMIT", usage: "the process's memory limit, e.g. 600MiB or 1GiB; a quarter (at least 64 MiB) is headroom, the rest the budget every request, import and training job reserves from (empty: the cgroup's memory.max, else 2GiB)", value: sizeVal(&c.MemoryLimit)},
		{flag: "max-images", env: "MAX_IMAGES", def: strconv.Itoa(api.DefaultMaxImages), usage: "images per request at most", value: intVal(&c.MaxImages)},
		{flag: "predict-timeout", env: "PREDICT_TIMEOUT", def: api.DefaultPredictTimeout.String(), usage: "longest a prediction may take before 504", value: durVal(&c.PredictTimeout)},
		{flag: "read-timeout", env: "READ_TIMEOUT", def: "30s", usage: "longest a client may take to send a request, body included (slow uploads are cut off)", value: durVal(&c.ReadTimeout)},
		{flag: "shutdown-timeout", env: "SHUTDOWN_TIMEOUT", def: "20s", usage: "how long requests in flight may take to finish after SIGTERM", value: durVal(&c.ShutdownTimeout)},
		{flag: "bench-floor", env: "BENCH_FLOOR", def: "false", usage: "serve POST /bench/floor, the trivial handler /predict is benchmarked against", value: boolVal(&c.BenchFloor)},
		{flag: "trusted-proxies", env: "TRUSTED_PROXIES", usage: "comma-separated CIDR prefixes of proxies (an ingress) whose X-Forwarded-For or Forwarded header names the client whose failed admin attempts are limited (empty: trust none, count the peer's address)", value: prefixesVal(&c.TrustedProxies)},
		{flag: "drain-delay", env: "DRAIN_DELAY", def: "0s", usage: "after SIGTERM, how long to keep serving with /readyz failing before closing the listener", value: durVal(&c.DrainDelay)},
	}
}

// parseConfig reads flags over environment over defaults, and checks the values.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, s := range c.settings() {
		if s.def != "" {
			if err := s.value.Set(s.def); err != nil {
				panic("bad default for " + s.flag) // a programming error
			}
		}
		// A malformed environment value is an error, not a silent zero.
		if v := getenv(s.env); v != "" {
			if err := s.value.Set(v); err != nil {
				return nil, fmt.Errorf("%s=%q: %v", s.env, v, err)
			}
		}
		fs.Var(s.value, s.flag, s.usage+" (env "+s.env+")")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case c.Workers < 1:
		return nil, fmt.Errorf("WORKERS must be at least 1")
	case c.MaxBatch < 1:
		return nil, fmt.Errorf("MAX_BATCH must be at least 1")
	case c.MaxBodyBytes < 1024:
		return nil, fmt.Errorf("MAX_BODY_BYTES must be at least 1024")
	case c.MaxPixels < 784:
		return nil, fmt.Errorf("MAX_PIXELS must be at least 784")
	case c.MaxImages < 1:
		return nil, fmt.Errorf("MAX_IMAGES must be at least 1")
	case c.MaxLoadedModels < 1:
		return nil, fmt.Errorf("MAX_LOADED_MODELS must be at least 1")
	case c.TrainPriority != "idle" && c.TrainPriority != "normal":
		return nil, fmt.Errorf("TRAIN_PRIORITY must be idle or normal")
	case c.TrainJobs < 1:
		return nil, fmt.Errorf("TRAIN_JOBS must be at least 1")
	case c.WatchInterval <= 0:
		return nil, fmt.Errorf("WATCH_INTERVAL must be positive")
	case c.ReadTimeout <= 0:
		return nil, fmt.Errorf("READ_TIMEOUT must be positive")
	case c.BatchDelay < 0 || c.PredictTimeout <= 0 || c.ShutdownTimeout <= 0 || c.DrainDelay < 0:
		return nil, fmt.Errorf("durations must be positive")
	}
	if s3store.IsURL(c.ModelDir) {
		s3, err := s3store.ConfigFromEnv(c.ModelDir, getenv)
		if err != nil {
			return nil, err
		}
		c.S3 = &s3
	}
	return c, nil
}

// printable returns the configuration as name=value pairs for the start-up log, secrets redacted.
func (c *config) printable() map[string]string {
	out := map[string]string{}
	for _, s := range c.settings() {
		v := s.value.String()
		if s.secret {
			v = map[bool]string{true: "(generated)", false: "(set, redacted)"}[v == ""]
		}
		out[s.env] = v
	}
	return out
}
