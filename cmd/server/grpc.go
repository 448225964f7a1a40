package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/grpcapi"
)

// grpcListener serves the Open Inference Protocol's gRPC service on GRPC_ADDR; the zero value (GRPC_ADDR off)
// does nothing, so serve calls its methods either way.
type grpcListener struct {
	srv *grpcapi.Server
}

// startGRPC listens on cfg.GRPCAddr, unless it is empty or "off", and serves srv there.
func startGRPC(cfg *config, log *zap.Logger, srv *grpcapi.Server, stdout io.Writer) (grpcListener, error) {
	if cfg.GRPCAddr == "" || cfg.GRPCAddr == "off" {
		return grpcListener{}, nil
	}
	ln, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return grpcListener{}, fmt.Errorf("GRPC_ADDR: %w", err)
	}
	go func() {
		if err := srv.Serve(ln); err != nil {
			log.Error("gRPC server stopped", zap.Error(err))
		}
	}()
	log.Info("gRPC listening", zap.String("addr", ln.Addr().String()))
	fmt.Fprintf(stdout, "perceptron gRPC listening on %s\n", ln.Addr())
	return grpcListener{srv}, nil
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
