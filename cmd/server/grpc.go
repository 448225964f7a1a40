package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/api"
	"github.com/perceptron-dev/perceptron/internal/grpcapi"
	"github.com/perceptron-dev/perceptron/internal/inference"
)

// grpcListener is the Open Inference Protocol's gRPC service on GRPC_ADDR; the zero value (GRPC_ADDR off) does
// nothing, so serve calls its methods either way.
type grpcListener struct {
	srv *grpcapi.Server
}

// startGRPC listens on cfg.GRPCAddr, unless it is empty or "off", and serves the gRPC service there with the same
// engine, image decoding and metrics registry as the HTTP routes.
func startGRPC(cfg *config, log *zap.Logger, reg prometheus.Registerer, engine *inference.Engine, rest *api.Server,
	metrics *api.Metrics, stdout io.Writer) (grpcListener, error) {
	if cfg.GRPCAddr == "" || cfg.GRPCAddr == "off" {
		return grpcListener{}, nil
	}
	ln, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return grpcListener{}, fmt.Errorf("GRPC_ADDR: %w", err)
	}
	srv := grpcapi.New(log.Named("grpc"), grpcapi.Config{
		Version: version, MaxRecvMsgSize: int(min(cfg.MaxBodyBytes, 1<<31-1)), MaxImages: cfg.MaxImages,
		PredictTimeout: cfg.PredictTimeout,
	}, reg, engine, rest, metrics)
	go func() {
		if err := srv.Serve(ln); err != nil {
			log.Error("gRPC server stopped", zap.Error(err))
		}
	}()
	log.Info("gRPC listening", zap.String("addr", ln.Addr().String()))
	fmt.Fprintf(stdout, "perceptron gRPC listening on %s\n", ln.Addr())
	return grpcListener{srv}, nil
}

// Drain makes gRPC readiness and health fail, as the HTTP drain makes /readyz fail.
func (g grpcListener) Drain() {
	if g.srv != nil {
		g.srv.Drain()
	}
}

// Stop stops the gRPC server gracefully within ctx, then cuts the calls left; the returned channel closes when it has.
func (g grpcListener) Stop(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if g.srv != nil {
			g.srv.Stop(ctx)
		}
	}()
	return done
}

// canceled returns a context that has already ended, to stop a server at once.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
