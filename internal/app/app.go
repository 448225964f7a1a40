// Package app is perceptron's composition root: New builds the whole service, once, from a Config — the model
// registry, the inference engine, the data set store, the training jobs, the metrics and the HTTP handlers — and
// Start sets its background work going (training runners, the replica watch). The gRPC service is built here too;
// the binary decides whether it listens. The binary (cmd/server) and every test that runs a whole service build it
// here, so a test cannot drift from what ships.
//
// GoLive is the one way a model version starts serving, whoever asks: an operator's activation, a finished
// training job, a replica following the registry, or the start of the process.
package app

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/api"
	"github.com/perceptron-dev/perceptron/internal/grpcapi"
	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/registry"
	"github.com/perceptron-dev/perceptron/internal/s3store"
	"github.com/perceptron-dev/perceptron/internal/train"
	"github.com/perceptron-dev/perceptron/internal/uploads"
)

// Config is everything the service is built from. Zero values pick the defaults noted on each field.
type Config struct {
	// ModelDir holds the registry (versions, the active pointer) and the job records; required. With S3 it is the
	// bucket's s3://bucket/prefix address, and the job records are kept in DataDir/jobs instead (not shared).
	ModelDir string
	// S3 reaches the bucket of an s3:// ModelDir; nil means ModelDir is a folder.
	S3 *s3store.Config
	// CacheDir keeps the versions downloaded from a bucket; "" means a folder under os.TempDir().
	CacheDir string
	// DataDir holds uploaded data sets (DataDir/sets); required.
	DataDir string
	// Embedded is the model served when none has been activated; nil means the built-in default model.
	Embedded *model.Network
	// DefaultModel names the model this process serves: its active version goes live at start and follows every
	// activation of that name. Versions of other names are stored and activated under their own names without
	// replacing it. Empty means the embedded model's name.
	DefaultModel string
	// MaxLoadedModels is how many models stay loaded to serve at most, the default one included (any version of any
	// model is loaded on first use; see inference.Models); 0 means inference.DefaultMaxLoaded.
	MaxLoadedModels int
	// ReplicaID names this process among the replicas sharing ModelDir; empty means the host name.
	ReplicaID string
	// TrainJobs is how many training jobs run at once; 0 means 1.
	TrainJobs int
	// TrainNormalPriority keeps background training jobs at normal priority instead of the lowest (see
	// train.JobsConfig.NormalPriority).
	TrainNormalPriority bool
	// Foreground runs training jobs at normal priority on every core (tests and the command line); the server
	// runs them in the background, one low-priority thread each.
	Foreground bool
	// WatchInterval is how often the registry's active pointer is checked for a change made by another replica;
	// 0 means no watch.
	WatchInterval time.Duration
	// Engine sizes the worker pool and its queue (its own zero values are documented there).
	Engine inference.Config
	// Memory is the process's memory budget; nil means API.Memory, and without that an unlimited one (tests).
	Memory *membudget.Budget
	// API holds the HTTP limits and the admin token; its Memory is set from Memory.
	API api.Config
	// GRPC holds the gRPC service's limits (its own zero values are documented there).
	GRPC grpcapi.Config
}

// Service is the built service. Its fields are the parts a test or the binary may need to reach directly.
type Service struct {
	Log        *zap.Logger
	Prometheus *prometheus.Registry
	Metrics    *api.Metrics
	Registry   *registry.Registry
	Engine     *inference.Engine
	Models     *inference.Models // the other models and versions served, loaded on demand
	Sets       *uploads.Store
	Jobs       *train.Jobs
	HTTP       *api.Server
	GRPC       *grpcapi.Server // the Open Inference Protocol over gRPC, through the same engine; the caller serves it

	cfg     Config
	started bool
}

// New builds the service from cfg: the registry is opened and its active version chosen, the engine serves it,
// and the handlers are ready. Nothing runs in the background until Start.
func New(log *zap.Logger, cfg Config) (*Service, error) {
	if cfg.Embedded == nil {
		embedded, err := model.Default()
		if err != nil {
			return nil, err
		}
		cfg.Embedded = embedded
	}
	if cfg.Memory == nil {
		cfg.Memory = cfg.API.Memory
	}
	if cfg.Memory == nil {
		cfg.Memory = membudget.New(1 << 62)
	}
	if cfg.DefaultModel == "" {
		cfg.DefaultModel = cfg.Embedded.Name
	}
	if cfg.API.MaxPixels <= 0 {
		cfg.API.MaxPixels = api.DefaultMaxPixels // data set imports take the same limit as predictions
	}
	s := &Service{Log: log, cfg: cfg, Prometheus: prometheus.NewRegistry()}
	var err error
	if s.Registry, err = OpenRegistry(cfg.ModelDir, cfg.S3, cfg.Embedded, cfg.CacheDir); err != nil {
		return nil, err
	}
	if bad, _ := s.Registry.Problems(); len(bad) > 0 {
		for v, err := range bad {
			log.Warn("model version does not load; ignored", zap.String("version", v), zap.Error(err))
		}
	}
	if s.Sets, err = uploads.Open(filepath.Join(cfg.DataDir, "sets"), uploads.Limits{MaxPixels: cfg.API.MaxPixels, Memory: cfg.Memory}); err != nil {
		return nil, err
	}
	s.Metrics = api.NewMetrics(s.Prometheus)
	registerRegistryMetrics(s.Prometheus, s.Registry)
	engineCfg := cfg.Engine
	engineCfg.Observer = s.Metrics
	s.Engine = inference.New(engineCfg, nil)
	s.Metrics.RegisterEngine(s.Prometheus, s.Engine)

	// The model to serve at start goes live like any other.
	first, fellBack, err := s.Registry.LoadActiveOf(cfg.DefaultModel)
	if err != nil {
		s.Engine.Close()
		return nil, fmt.Errorf("DEFAULT_MODEL %s: %w", cfg.DefaultModel, err)
	}
	if fellBack != "" {
		log.Warn("active model unusable; fell back", zap.String("why", fellBack), zap.String("version", first.Version))
	}
	if _, err := s.GoLive(SourceStart, first.Version, first); err != nil {
		s.Engine.Close()
		return nil, err
	}

	// Job records need a shared folder for the queue any replica claims from (renames); in a bucket there is none,
	// so each replica keeps its own jobs' records and runs the jobs it accepted.
	jobsDir := filepath.Join(cfg.ModelDir, "jobs")
	if cfg.S3 != nil {
		jobsDir = filepath.Join(cfg.DataDir, "jobs")
	}
	s.Jobs, err = train.NewJobs(train.JobsConfig{
		Dir: jobsDir, Replica: cfg.ReplicaID, Registry: s.Registry,
		Data:        &uploads.Catalog{Store: s.Sets, DataDir: cfg.DataDir},
		Concurrency: cfg.TrainJobs, Background: !cfg.Foreground, NormalPriority: cfg.TrainNormalPriority, Serving: s.activeOf, Memory: cfg.Memory,
		GoLive: func(version string) error {
			_, err := s.GoLive(SourceJob, version, nil)
			return err
		},
		Observe:    s.jobChanged,
		SaveFailed: s.jobNotSaved,
	})
	if err != nil {
		s.Engine.Close()
		return nil, err
	}
	apiCfg := cfg.API
	apiCfg.Memory = cfg.Memory
	s.Models = inference.NewModels(s.Engine, s.Registry, cfg.MaxLoadedModels)
	apiCfg.Models = s.Models
	apiCfg.GoLive = func(version string) (*model.Network, error) { return s.GoLive(SourceOperator, version, nil) }
	s.HTTP = api.NewServer(log, apiCfg, s.Prometheus, s.Metrics, s.Engine, s.Registry, s.Jobs, s.Sets)
	grpcCfg := cfg.GRPC
	grpcCfg.Models = s.Models
	grpcCfg.Memory = cfg.Memory
	s.GRPC = grpcapi.New(log.Named("grpc"), grpcCfg, s.Prometheus, s.Engine, s.HTTP, s.Metrics)
	return s, nil
}

// Start sets the background work going: the training runners (jobs queued before a restart start now) and, with
// a WatchInterval, the watch that makes this replica follow the active version another one chose. The watch stops
// with ctx; the runners with Close.
func (s *Service) Start(ctx context.Context) {
	if s.started {
		panic("app: Start called twice")
	}
	s.started = true
	s.Jobs.Start()
	if s.cfg.WatchInterval > 0 {
		go s.Registry.Watch(ctx, s.cfg.DefaultModel, s.cfg.WatchInterval, func() string { return s.Engine.Model().Version },
			func(net *model.Network) { s.GoLive(SourceReplica, net.Version, net) },
			func(err error) { s.Log.Warn("model watch", zap.Error(err)) })
	}
}

// Handler serves every route (or, with a separate admin address, every route but the admin ones).
func (s *Service) Handler() http.Handler { return s.HTTP }

// AdminHandler serves the admin routes alone, for API.SeparateAdmin.
func (s *Service) AdminHandler() http.Handler { return s.HTTP.AdminHandler() }

// Drain makes readiness fail (HTTP, gRPC and its health service) and asks HTTP clients to close their connections,
// ahead of a shutdown.
func (s *Service) Drain() {
	s.HTTP.Drain()
	s.GRPC.Drain()
}

// Close stops the training runners (a running job is recorded as interrupted) and the engine.
func (s *Service) Close() {
	s.Jobs.Close()
	s.Engine.Close()
}

// Source says who asked for a model to go live, for the log and the metrics.
type Source string

// The ways a model version comes to serve.
const (
	SourceStart    Source = "start"    // the active version (or a fallback) when the process starts
	SourceOperator Source = "operator" // POST /models/{version}/activate
	SourceJob      Source = "job"      // a training job whose model was activated
	SourceReplica  Source = "replica"  // another replica moved the registry's active pointer
)

// GoLive is the one way a model version starts serving, whoever asks (from says who). An operator's activation and
// a training job's publish it: the version is loaded and checked, then written as the active version of its model
// (the name its header gives) for every replica. A replica following the registry, and the start of the process, serve what the registry
// already names, so loaded (a nil loaded network is read from the registry) is only checked. Then, in every case,
// the engine serves it from its next batch on (no request fails, no batch mixes versions), the metrics count the
// swap and the log says who asked. A version of another model than DefaultModel only has its activation logged:
// the engine keeps serving DefaultModel.
func (s *Service) GoLive(from Source, version string, loaded *model.Network) (*model.Network, error) {
	net := loaded
	var err error
	switch {
	case from == SourceOperator || from == SourceJob:
		net, err = s.Registry.Activate(version)
	case net == nil:
		net, err = s.Registry.Load(version)
	}
	if err != nil {
		return nil, err
	}
	if net.Name != s.cfg.DefaultModel {
		s.Log.Info("model activated", zap.String("source", string(from)), zap.String("name", net.Name),
			zap.String("version", net.Version), zap.String("served", s.cfg.DefaultModel))
		return net, nil
	}
	prev := s.Engine.Swap(net)
	previous := ""
	if prev != nil {
		previous = prev.Version
		s.Metrics.Swapped(net)
	} else {
		s.Metrics.SetModel(net)
	}
	s.Log.Info("model live", zap.String("source", string(from)), zap.String("name", net.Name),
		zap.String("version", net.Version), zap.String("previous", previous))
	return net, nil
}

// activeOf returns the active network of model name for a training job's comparison: the one serving when it is
// the served model, else the registry's active version of that name; nil when the name has none.
func (s *Service) activeOf(name string) *model.Network {
	if name == s.cfg.DefaultModel {
		return s.Engine.Model()
	}
	net, _, err := s.Registry.LoadActiveOf(name)
	if err != nil {
		return nil
	}
	return net
}

// jobChanged exports a job's change in the metrics and logs how a finished one ended.
func (s *Service) jobChanged(j train.Job) {
	if s.Jobs != nil {
		s.Metrics.Jobs(s.Jobs.List())
	}
	if j.Finished() {
		s.Log.Info("training job finished", zap.String("job", j.ID), zap.String("status", j.Status),
			zap.String("model_version", j.ModelVersion), zap.Bool("activated", j.Activated),
			zap.String("decision", j.Decision), zap.String("error", j.Error))
	}
}

// jobNotSaved logs a job record that could not be written: the job goes on, but a restart would not know its
// latest state.
func (s *Service) jobNotSaved(j train.Job, err error) {
	s.Log.Warn("training job record not saved", zap.String("job", j.ID), zap.String("status", j.Status), zap.Error(err))
}

// String describes the service for the start-up log.
func (s *Service) String() string {
	m := s.Engine.Model()
	return fmt.Sprintf("%s %s from %s", m.Name, m.Version, s.cfg.ModelDir)
}
