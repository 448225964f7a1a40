package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/perceptron-dev/perceptron/internal/api"
	"github.com/perceptron-dev/perceptron/internal/datastore"
	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/registry"
	"github.com/perceptron-dev/perceptron/internal/train"
)

// newLogger returns a JSON logger at the given level, or a human-readable console logger for debug. Info and below
// are sampled (the first 100 identical messages a second, then every 100th) so logging cannot become the bottleneck
// under load.
func newLogger(level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %v", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if lvl == zapcore.DebugLevel {
		encCfg = zap.NewDevelopmentEncoderConfig()
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)
	core = zapcore.NewSamplerWithOptions(core, time.Second, 100, 100)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(w)))), nil
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.LogLevel, stderr)
	if err != nil {
		return err
	}
	defer log.Sync()
	log.Info("configuration", zap.String("version", version), zap.Any("config", cfg.printable()))
	if cfg.AdminToken == "" && cfg.AdminTokenFile != "" {
		b, err := os.ReadFile(cfg.AdminTokenFile)
		if err != nil {
			return fmt.Errorf("ADMIN_TOKEN_FILE: %w", err)
		}
		if cfg.AdminToken = strings.TrimSpace(string(b)); cfg.AdminToken == "" {
			return fmt.Errorf("ADMIN_TOKEN_FILE %s is empty", cfg.AdminTokenFile)
		}
	}
	if cfg.AdminToken == "" {
		var b [24]byte
		rand.Read(b[:])
		cfg.AdminToken = hex.EncodeToString(b[:])
		// Logged once, on purpose: it is the only way an operator who set none can use the admin routes.
		log.Warn("ADMIN_TOKEN is not set; generated one for this run", zap.String("admin_token", cfg.AdminToken))
	}

	embedded, err := model.Default()
	if err != nil {
		return err
	}
	reg, err := registry.Open(cfg.ModelDir, embedded)
	if err != nil {
		return err
	}
	if bad, _ := reg.Problems(); len(bad) > 0 {
		for v, err := range bad {
			log.Warn("model version does not load; ignored", zap.String("version", v), zap.Error(err))
		}
	}
	net0, fellBack, err := reg.LoadActive()
	if err != nil {
		return err
	}
	if fellBack != "" {
		log.Warn("active model unusable; fell back", zap.String("why", fellBack), zap.String("version", net0.Version))
	}
	log.Info("model loaded", zap.String("name", net0.Name), zap.String("version", net0.Version),
		zap.String("model_dir", cfg.ModelDir))

	// One memory budget for the process; the Go runtime's soft limit sits between it and the hard limit.
	src := "MEMORY_LIMIT"
	limit := cfg.MemoryLimit
	if limit == 0 {
		src, limit = "cgroup", membudget.CgroupLimit(os.DirFS("/sys/fs/cgroup"))
	}
	plan := membudget.NewPlan(limit, src)
	debug.SetMemoryLimit(plan.SoftLimit)
	memory := membudget.New(plan.Budget)
	log.Info("memory budget", zap.String("limit_from", plan.Source), zap.Int64("limit_bytes", plan.Limit),
		zap.Int64("budget_bytes", plan.Budget), zap.Int64("go_soft_limit_bytes", plan.SoftLimit))

	sets, err := datastore.Open(filepath.Join(cfg.DataDir, "sets"), datastore.Limits{MaxPixels: cfg.MaxPixels, Memory: memory})
	if err != nil {
		return err
	}
	promReg := prometheus.NewRegistry()
	metrics := api.NewMetrics(promReg)
	engine := inference.New(inference.Config{
		Workers: cfg.Workers, MaxBatch: cfg.MaxBatch, BatchDelay: cfg.BatchDelay, QueueSize: cfg.QueueSize,
		Observer: metrics,
	}, net0)
	defer engine.Close()
	metrics.RegisterEngine(promReg, engine)
	// The jobs' observer may fire before NewJobs returns (a job queued before a restart starts at once).
	var jobsRef atomic.Pointer[train.Jobs]
	swap := func(n *model.Network) {
		prev := engine.Swap(n)
		metrics.Swapped(n)
		log.Info("model swapped", zap.String("version", n.Version), zap.String("previous", prev.Version))
	}
	jobs, err := train.NewJobs(train.JobsConfig{
		Dir: filepath.Join(cfg.ModelDir, "jobs"), Replica: cfg.ReplicaID, Registry: reg, Data: &datastore.Catalog{Store: sets, DataDir: cfg.DataDir},
		Concurrency: cfg.TrainJobs, Background: true, Serving: engine.Model, Activate: swap,
		Observe: func(j train.Job) {
			if j := jobsRef.Load(); j != nil {
				metrics.Jobs(j.List())
			}
			if j.Finished() {
				log.Info("training job finished", zap.String("job", j.ID), zap.String("status", j.Status),
					zap.String("model_version", j.ModelVersion), zap.Bool("activated", j.Activated),
					zap.String("decision", j.Decision), zap.String("error", j.Error))
			}
		},
	})
	if err != nil {
		return err
	}
	jobsRef.Store(jobs)
	defer jobs.Close()
	// Replicas sharing MODEL_DIR follow the active pointer, whoever moved it.
	go reg.Watch(ctx, cfg.WatchInterval, func() string { return engine.Model().Version }, swap,
		func(err error) { log.Warn("model watch", zap.Error(err)) })

	srv := api.NewServer(log, api.Config{
		MaxBodyBytes: cfg.MaxBodyBytes, MaxPixels: cfg.MaxPixels, MaxImages: cfg.MaxImages, Memory: memory,
		PredictTimeout: cfg.PredictTimeout, BenchFloor: cfg.BenchFloor, AdminToken: cfg.AdminToken,
		SeparateAdmin: cfg.AdminAddr != "", TrustedProxies: cfg.TrustedProxies,
	}, promReg, metrics, engine, reg, jobs, sets)

	servers := []*http.Server{newHTTPServer(srv, cfg, log)}
	addrs := []string{cfg.Addr}
	if cfg.AdminAddr != "" {
		servers = append(servers, newHTTPServer(srv.AdminHandler(), cfg, log))
		addrs = append(addrs, cfg.AdminAddr)
	}
	errc := make(chan error, len(servers))
	for i, hs := range servers {
		ln, err := net.Listen("tcp", addrs[i])
		if err != nil {
			for _, started := range servers[:i] {
				started.Close()
			}
			return err
		}
		go func() { errc <- hs.Serve(ln) }()
		if i == 0 {
			log.Info("listening", zap.String("addr", ln.Addr().String()))
			fmt.Fprintf(stdout, "perceptron listening on http://%s\n", ln.Addr())
		} else {
			log.Info("admin listening", zap.String("addr", ln.Addr().String()))
			fmt.Fprintf(stdout, "perceptron admin listening on http://%s\n", ln.Addr())
		}
	}

	select {
	case err := <-errc:
		for _, hs := range servers {
			hs.Close()
		}
		return err
	case <-ctx.Done():
	}
	// Drain: readiness fails and responses carry Connection: close, then the listeners close and requests in
	// flight finish, all within SHUTDOWN_TIMEOUT.
	log.Info("shutting down: draining", zap.Duration("drain_delay", cfg.DrainDelay), zap.Duration("timeout", cfg.ShutdownTimeout))
	srv.Drain()
	if cfg.DrainDelay > 0 {
		time.Sleep(cfg.DrainDelay)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	for _, hs := range servers {
		if err := hs.Shutdown(sctx); err != nil {
			log.Warn("shutdown timed out; closing remaining connections", zap.Error(err))
			hs.Close()
		}
	}
	for range servers {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	log.Info("stopped")
	return nil
}

// newHTTPServer wraps h with the timeouts that keep slow or idle clients from holding connections for ever.
func newHTTPServer(h http.Handler, cfg *config, log *zap.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.ReadTimeout + cfg.PredictTimeout + 30*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
}
