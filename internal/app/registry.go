package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/registry"
	"github.com/perceptron-dev/perceptron/internal/s3store"
)

// OpenRegistry opens the registry in dir: a folder, or with s3 (for an s3://bucket/prefix dir) a bucket, whose
// downloads are cached in cacheDir ("" means a folder under os.TempDir()). The server, its training command and its
// import command all open it here, so they agree on where a MODEL_DIR leads.
func OpenRegistry(dir string, s3 *s3store.Config, embedded *model.Network, cacheDir string) (*registry.Registry, error) {
	if s3 == nil {
		return registry.Open(dir, embedded)
	}
	store, err := s3store.New(*s3)
	if err != nil {
		return nil, err
	}
	return registry.OpenStore(dir, store, embedded, registry.Options{CacheDir: cacheDir})
}

// registerRegistryMetrics exports the polls of the registry's pointers and the errors of its store: with a bucket,
// registry_polls_total divided by the uptime is what a replica costs the store.
func registerRegistryMetrics(reg prometheus.Registerer, r *registry.Registry) {
	for _, res := range registry.PollResults {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "registry_polls_total",
			Help:        "Polls of the model pointers in an object-store registry (one conditional GET each), by result: unchanged (a 304), changed, error, first (the first read of a pointer, or of a missing one again).",
			ConstLabels: prometheus.Labels{"result": res.String()},
		}, func() float64 { polls, _ := r.Polls(); return float64(polls[res]) }))
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "registry_errors_total",
		Help: "Requests to an object-store registry that failed (unreachable, refused), and version objects refused as corrupt.",
	}, func() float64 { _, errs := r.Polls(); return float64(errs) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "registry_cached_bytes",
		Help: "Bytes of model versions in the local download cache of an object-store registry.",
	}, func() float64 { _, n := r.CachedVersions(); return float64(n) }))
}
