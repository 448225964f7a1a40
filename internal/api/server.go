// Package api is perceptron's HTTP surface: the routes of api/openapi.yaml, their middleware (request id, panic
// recovery, access log, body limits, drain handling), request parsing for every accepted upload form, and the
// RFC 9457 problem+json answers for every error. It turns requests into calls on the inference engine and knows
// nothing of how images are decoded or networks computed.
package api

import (
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/registry"
	"github.com/perceptron-dev/perceptron/internal/train"
	"github.com/perceptron-dev/perceptron/internal/uploads"
)

// Defaults for the zero fields of Config; the server's command line and environment default to them too.
const (
	DefaultMaxBodyBytes   = 32 << 20
	DefaultMaxPixels      = 40_000_000 // a 40-megapixel camera photo; the memory budget bounds what decoding costs
	DefaultMaxImages      = 256
	DefaultPredictTimeout = 10 * time.Second
)

// Config holds the API's limits. Zero values pick the defaults noted on each field.
type Config struct {
	MaxBodyBytes int64 // bytes per request body; 0 means DefaultMaxBodyBytes (32 MiB)
	MaxPixels    int   // width x height per image, checked before decoding; 0 means DefaultMaxPixels (40 million)
	MaxImages    int   // images per request; 0 means DefaultMaxImages (256)
	// Memory is the process's memory budget: request bodies, decoded images and their preprocessing reserve from it
	// before they allocate, and a request that does not fit gets 503 (413 if it never could). Nil means unlimited.
	Memory         *membudget.Budget
	PredictTimeout time.Duration // longest a prediction may take, queueing included, before 504; 0 means 10s (DefaultPredictTimeout)
	// AdminToken is the bearer token of the admin routes; with none set they refuse every request.
	AdminToken string
	// SeparateAdmin leaves the admin routes out of the main handler; AdminHandler serves them (ADMIN_ADDR).
	SeparateAdmin bool
	// AdminFailLimit is how many failed admin attempts a client address may make per minute; 0 means 10.
	AdminFailLimit int
	// TrustedProxies are the proxies (an ingress, a load balancer) whose forwarding headers name the client address
	// that failed admin attempts are counted against; nil trusts none and counts the peer's address.
	TrustedProxies []netip.Prefix
	// GoLive makes a registry version the serving model (POST /models/{version}/activate): the composition root's
	// one way a model goes live. Nil refuses activations.
	GoLive func(version string) (*model.Network, error)
	// Models finds the network of a model name and version ("" for its active version; name "" for the default
	// model), loading it if needed; release is called once the request is answered. Nil serves the engine's model
	// alone.
	Models ModelFinder
	// BenchFloor adds POST /bench/floor, a handler that reads the multipart images like /predict and answers a
	// constant JSON: the floor that /predict's throughput is measured against. Off in production.
	BenchFloor bool
	// Version is the server version GET /v2 reports; "" reports "dev".
	Version string
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxPixels <= 0 {
		c.MaxPixels = DefaultMaxPixels
	}
	if c.MaxImages <= 0 {
		c.MaxImages = DefaultMaxImages
	}
	if c.AdminFailLimit <= 0 {
		c.AdminFailLimit = 10
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.PredictTimeout <= 0 {
		c.PredictTimeout = DefaultPredictTimeout
	}
	return c
}

// Server is the HTTP handler of the service.
type Server struct {
	log      *zap.Logger
	cfg      Config
	gatherer prometheus.Gatherer
	metrics  *Metrics
	engine   *inference.Engine
	registry *registry.Registry
	jobs     *train.Jobs
	datasets *uploads.Store
	fails    failures
	draining atomic.Bool
	handler  http.Handler
	labels   labelCache
	memory   *membudget.Budget
	turns    *turns // image decoding, in turns by model
}

// NewServer wires the routes. The engine serves predictions with its active model; the registry, the jobs and the
// data set store serve the admin routes; metrics are recorded in m and /metrics serves what gatherer collects (the registry m was
// registered on).
func NewServer(log *zap.Logger, cfg Config, gatherer prometheus.Gatherer, m *Metrics, engine *inference.Engine, reg *registry.Registry, jobs *train.Jobs, sets *uploads.Store) *Server {
	s := &Server{log: log, cfg: cfg.withDefaults(), gatherer: gatherer, metrics: m, engine: engine, registry: reg, jobs: jobs, datasets: sets}
	s.fails.limit = s.cfg.AdminFailLimit
	s.memory = s.cfg.Memory
	s.turns = newTurns(0)
	s.handler = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Drain marks the server as shutting down: /readyz fails from now on and responses ask clients to close their
// connections, so load balancers and clients move away before the listener closes.
func (s *Server) Drain() { s.draining.Store(true) }

// Draining reports whether Drain was called.
func (s *Server) Draining() bool { return s.draining.Load() }
