package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/perceptron-dev/perceptron/internal/api"
	"github.com/perceptron-dev/perceptron/internal/app"
	"github.com/perceptron-dev/perceptron/internal/grpcapi"
	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/randid"
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

// serve runs the server until ctx ends: it reads the configuration, builds the service (internal/app), listens,
// and drains when told to stop.
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
	if err := resolveAdminToken(cfg, log); err != nil {
		return err
	}
	plan := memoryPlan(cfg, log)
	svc, err := app.New(log, serviceConfig(cfg, plan))
	if err != nil {
		return err
	}
	defer svc.Close()
	// Logged once the engine and the memory plan have resolved their defaults, so a 0 or an empty value ("pick for
	// me") shows what was picked.
	cfg.QueueSize, cfg.MemoryLimit = svc.Engine.Config().QueueSize, plan.Limit
	log.Info("configuration", zap.String("version", version), zap.Any("config", cfg.printable()))
	svc.Start(ctx)
	log.Info("serving", zap.Stringer("model", svc))

	l, err := listen(cfg, log, svc, stdout)
	if err != nil {
		return err
	}
	select {
	case err := <-l.errc:
		l.close()
		return err
	case <-ctx.Done():
	}
	return l.drain(cfg, log, svc)
}

// resolveAdminToken fills cfg.AdminToken from ADMIN_TOKEN_FILE when only that is set, or with a random token that
// is logged once, the only way an operator who set none can use the admin routes.
func resolveAdminToken(cfg *config, log *zap.Logger) error {
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
		cfg.AdminToken = randid.Hex(24)
		log.Warn("ADMIN_TOKEN is not set; generated one for this run", zap.String("admin_token", cfg.AdminToken))
	}
	return nil
}

// memoryPlan sizes the process's memory budget from MEMORY_LIMIT or the cgroup's limit, and sets the Go runtime's
// soft limit between the budget and the hard limit.
func memoryPlan(cfg *config, log *zap.Logger) membudget.Plan {
	src, limit := "MEMORY_LIMIT", cfg.MemoryLimit
	if limit == 0 {
		src, limit = "cgroup", membudget.CgroupLimit(os.DirFS("/sys/fs/cgroup"))
	}
	plan := membudget.NewPlan(limit, src)
	debug.SetMemoryLimit(plan.SoftLimit)
	log.Info("memory budget", zap.String("limit_from", plan.Source), zap.Int64("limit_bytes", plan.Limit),
		zap.Int64("budget_bytes", plan.Budget), zap.Int64("go_soft_limit_bytes", plan.SoftLimit))
	return plan
}

// serviceConfig is the service's configuration as the settings give it.
func serviceConfig(cfg *config, plan membudget.Plan) app.Config {
	return app.Config{
		ModelDir: cfg.ModelDir, S3: cfg.S3, CacheDir: cfg.CacheDir, DataDir: cfg.DataDir, ReplicaID: cfg.ReplicaID, TrainJobs: cfg.TrainJobs,
		TrainNormalPriority: cfg.TrainPriority == "normal",
		WatchInterval:       cfg.WatchInterval, DefaultModel: cfg.DefaultModel, MaxLoadedModels: cfg.MaxLoadedModels, Memory: membudget.New(plan.Budget),
		Engine: inference.Config{Workers: cfg.Workers, MaxBatch: cfg.MaxBatch, BatchDelay: cfg.BatchDelay, QueueSize: cfg.QueueSize},
		API: api.Config{
			MaxBodyBytes: cfg.MaxBodyBytes, MaxPixels: cfg.MaxPixels, MaxImages: cfg.MaxImages,
			PredictTimeout: cfg.PredictTimeout, BenchFloor: cfg.BenchFloor, AdminToken: cfg.AdminToken,
			SeparateAdmin: cfg.AdminAddr != "", TrustedProxies: cfg.TrustedProxies, Version: version,
		},
		GRPC: grpcapi.Config{Version: version, MaxRecvMsgSize: int(min(cfg.MaxBodyBytes, 1<<31-1)), MaxImages: cfg.MaxImages,
			PredictTimeout: cfg.PredictTimeout},
	}
}

// listening is the service's listeners: HTTP on ADDR (and ADMIN_ADDR), gRPC on GRPC_ADDR.
type listening struct {
	servers   []*http.Server
	listeners []*onceCloseListener
	conns     []*connTracker
	grpc      grpcListener
	errc      chan error // what each HTTP server's Serve returned
}

// listen starts serving svc on every configured address and prints each one.
func listen(cfg *config, log *zap.Logger, svc *app.Service, stdout io.Writer) (*listening, error) {
	l := &listening{conns: []*connTracker{newConnTracker(), newConnTracker()}}
	l.servers = []*http.Server{newHTTPServer(svc.Handler(), cfg, log, l.conns[0])}
	addrs := []string{cfg.Addr}
	if cfg.AdminAddr != "" {
		l.servers = append(l.servers, newHTTPServer(svc.AdminHandler(), cfg, log, l.conns[1]))
		addrs = append(addrs, cfg.AdminAddr)
	}
	l.errc = make(chan error, len(l.servers))
	for i, hs := range l.servers {
		ln, err := net.Listen("tcp", addrs[i])
		if err != nil {
			for _, started := range l.servers[:i] {
				started.Close()
			}
			return nil, err
		}
		once := &onceCloseListener{Listener: ln}
		l.listeners = append(l.listeners, once)
		go func() { l.errc <- hs.Serve(once) }()
		what := map[bool]string{true: "listening", false: "admin listening"}[i == 0]
		log.Info(what, zap.String("addr", ln.Addr().String()))
		fmt.Fprintf(stdout, "perceptron %s on http://%s\n", what, ln.Addr())
	}
	var err error
	if l.grpc, err = startGRPC(cfg, log, svc.GRPC, stdout); err != nil {
		for _, hs := range l.servers {
			hs.Close()
		}
		return nil, err
	}
	return l, nil
}

// close stops every listener at once, after one of them failed.
func (l *listening) close() {
	for _, hs := range l.servers {
		hs.Close()
	}
	<-l.grpc.Stop(canceled())
}

// drain stops without losing a request. Readiness fails and every response carries Connection: close (for
// DRAIN_DELAY the listeners stay open while load balancers notice). Then the listeners close, and each open
// connection is left to get its answer (and close after it) or to sit idle past drainIdle: closing a kept-alive
// connection the moment it is idle would cut off a request the client is sending on it just then. Only then does
// Shutdown close what is left and wait for requests in flight, all within SHUTDOWN_TIMEOUT; gRPC stops gracefully
// beside it.
func (l *listening) drain(cfg *config, log *zap.Logger, svc *app.Service) error {
	log.Info("shutting down: draining", zap.Duration("drain_delay", cfg.DrainDelay), zap.Duration("timeout", cfg.ShutdownTimeout))
	svc.Drain()
	if cfg.DrainDelay > 0 {
		time.Sleep(cfg.DrainDelay)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	grpcStopped := l.grpc.Stop(sctx)
	defer func() { <-grpcStopped }()
	for _, ln := range l.listeners {
		ln.Close()
	}
	quiet := time.Now()
	for i := range l.servers {
		l.conns[i].waitQuiet(sctx, quiet, min(drainIdle, cfg.ShutdownTimeout/2))
	}
	for _, hs := range l.servers {
		if err := hs.Shutdown(sctx); err != nil {
			log.Warn("shutdown timed out; closing remaining connections", zap.Error(err))
			hs.Close()
		}
	}
	for range l.servers {
		// Serve returns net.ErrClosed for the listener closed above.
		if err := <-l.errc; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			return err
		}
	}
	log.Info("stopped")
	return nil
}

// drainIdle is how long a drain leaves a kept-alive connection idle before closing it: long enough for a client
// that has just had an answer to send its next request (which is then answered with Connection: close), short
// enough that a client which went quiet does not hold the shutdown up.
const drainIdle = time.Second

// onceCloseListener lets the drain close a listener before Shutdown, which closes it again.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// connTracker follows a server's connections through http.Server.ConnState, for the drain.
type connTracker struct {
	mu      sync.Mutex
	conns   map[net.Conn]connState
	changed chan struct{} // closed, and replaced, on every change
}

type connState struct {
	state http.ConnState
	since time.Time
}

func newConnTracker() *connTracker {
	return &connTracker{conns: map[net.Conn]connState{}, changed: make(chan struct{})}
}

func (t *connTracker) track(c net.Conn, st http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st == http.StateClosed || st == http.StateHijacked {
		delete(t.conns, c)
	} else {
		t.conns[c] = connState{st, time.Now()}
	}
	close(t.changed)
	t.changed = make(chan struct{})
}

// waitQuiet returns once no connection is serving a request and each has been idle (or waiting for its first
// request) for idle, counted from from at the earliest; or when ctx ends.
func (t *connTracker) waitQuiet(ctx context.Context, from time.Time, idle time.Duration) {
	for {
		t.mu.Lock()
		var next time.Time // the earliest time an idle connection has been idle long enough
		busy := false
		for _, c := range t.conns {
			if c.state == http.StateActive {
				busy = true
				continue
			}
			if until := maxTime(c.since, from).Add(idle); time.Now().Before(until) && (next.IsZero() || until.Before(next)) {
				next = until
			}
		}
		changed := t.changed
		t.mu.Unlock()
		if !busy && next.IsZero() {
			return
		}
		var timeout <-chan time.Time
		var timer *time.Timer
		if !next.IsZero() {
			timer = time.NewTimer(time.Until(next))
			timeout = timer.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-timeout:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// newHTTPServer wraps h with the timeouts that keep slow or idle clients from holding connections for ever; conns
// follows its connections for the drain.
func newHTTPServer(h http.Handler, cfg *config, log *zap.Logger, conns *connTracker) *http.Server {
	return &http.Server{
		ConnState:         conns.track,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.ReadTimeout + cfg.PredictTimeout + 30*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
}
