// Package grpcapi serves the Open Inference Protocol over gRPC (inference.GRPCInferenceService, generated in
// internal/oip/oippb) with the standard gRPC health service beside it. Requests run through the same inference
// engine as the REST routes, with the same batching, queue limits, model swap and image preprocessing; this package
// only translates messages, deadlines and errors. It does not listen on its own: the caller hands Serve a listener.
package grpcapi

import (
	"context"
	"errors"
	"net"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/perceptron-dev/perceptron/internal/api"
	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/oip/oippb"
	"github.com/perceptron-dev/perceptron/internal/randid"
)

// Config sizes the service. Zero values pick the defaults noted on each field.
type Config struct {
	Version        string        // the server version the metadata reports; "" reports "dev"
	MaxRecvMsgSize int           // bytes per request message; 0 means 32 MiB (the REST body limit's default)
	MaxImages      int           // rows per inference request; 0 means 256
	PredictTimeout time.Duration // longest an inference may take when the client set no shorter deadline; 0 means 10s
	// Models finds the network of a model name and version (inference.Models, shared with HTTP); nil serves the
	// engine's model alone.
	Models api.ModelFinder
	// Memory is the process's memory budget: a request message holds its size (twice: the message and what it
	// becomes) from it while it is answered, and one that does not fit now is RESOURCE_EXHAUSTED. Nil means
	// unlimited.
	Memory *membudget.Budget
}

func (c Config) withDefaults() Config {
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.MaxRecvMsgSize <= 0 {
		c.MaxRecvMsgSize = api.DefaultMaxBodyBytes
	}
	if c.MaxImages <= 0 {
		c.MaxImages = api.DefaultMaxImages
	}
	if c.PredictTimeout <= 0 {
		c.PredictTimeout = api.DefaultPredictTimeout
	}
	return c
}

// Images turns encoded images into rows of model input; *api.Server implements it, so BYTES tensors are decoded
// exactly as the REST routes decode them. Its errors are *api.Error.
type Images interface {
	PrepareImages(ctx context.Context, items [][]byte, in model.Input) ([]float32, int, error)
}

// Classified is told about every successful inference, with the rows that had no digit and the threshold that
// applied, for the metrics of predicted labels and outcomes; *api.Metrics implements it.
type Classified interface {
	CountAnswers(res inference.Result, noDigit []bool, minConfidence float64)
}

// Server is the gRPC server: the inference service, the health service, and their interceptors.
type Server struct {
	oippb.UnimplementedGRPCInferenceServiceServer

	log      *zap.Logger
	cfg      Config
	engine   *inference.Engine
	images   Images
	counted  Classified
	grpc     *grpc.Server
	health   *health.Server
	duration *prometheus.HistogramVec
	draining atomic.Bool
}

// New builds the server and registers its request histogram on reg. counted may be nil.
func New(log *zap.Logger, cfg Config, reg prometheus.Registerer, engine *inference.Engine, images Images, counted Classified) *Server {
	s := &Server{
		log: log, cfg: cfg.withDefaults(), engine: engine, images: images, counted: counted,
		health: health.NewServer(),
		duration: prometheus.NewHistogramVec(api.LatencyOpts("grpc_request_duration_seconds",
			"Time to answer gRPC requests, by full method name and status code."), []string{"method", "code"}),
	}
	reg.MustRegister(s.duration)
	s.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(s.cfg.MaxRecvMsgSize),
		// Chained in order: the request id comes first so that every later step can log it; metrics and the log
		// see the code that recovery turned a panic into.
		grpc.ChainUnaryInterceptor(withRequestID, s.observe, s.recoverPanic, s.holdMemory),
	)
	oippb.RegisterGRPCInferenceServiceServer(s.grpc, s)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(oippb.GRPCInferenceService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return s
}

// Serve answers gRPC on ln until Stop.
func (s *Server) Serve(ln net.Listener) error { return s.grpc.Serve(ln) }

// Drain marks the server as shutting down: ServerReady, ModelReady and the health service answer not serving from
// now on, so probes and load balancers move away while requests in flight still finish.
func (s *Server) Drain() {
	s.draining.Store(true)
	s.health.Shutdown()
}

// Stop closes the listeners and waits for the calls in flight until ctx ends, then cancels those left.
func (s *Server) Stop(ctx context.Context) {
	s.Drain()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// Stop closes every connection at once, so the calls left fail on their clients now; their handlers end
		// when the engine answers them, and GracefulStop's goroutine with them.
		s.log.Warn("gRPC graceful stop timed out; closing the connections left")
		s.grpc.Stop()
	}
}

type requestIDKey struct{}

// requestIDHeader carries the request id in both directions, as X-Request-Id does over HTTP.
const requestIDHeader = "x-request-id"

// withRequestID takes the request id from the x-request-id metadata when it is short and plain, else makes one, and
// sends it back in the response header.
func withRequestID(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	var id string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(requestIDHeader); len(v) == 1 && validRequestID(v[0]) {
			id = v[0]
		}
	}
	if id == "" {
		id = randid.Hex(8)
	}
	grpc.SetHeader(ctx, metadata.Pairs(requestIDHeader, id))
	return handler(context.WithValue(ctx, requestIDKey{}, id), req)
}

// holdMemory holds a request's size from the memory budget while it is answered, so gRPC calls count against
// MEMORY_LIMIT with the REST routes: the decoded message and the input rows or images it becomes.
func (s *Server) holdMemory(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	m, ok := req.(proto.Message)
	if !ok || s.cfg.Memory == nil {
		return handler(ctx, req)
	}
	n := 2 * int64(proto.Size(m))
	switch err := s.cfg.Memory.TryReserve(n); {
	case errors.Is(err, membudget.ErrNeverFits):
		return nil, status.Errorf(codes.ResourceExhausted, "the request (%d bytes) can never fit the memory budget (MEMORY_LIMIT)", n/2)
	case err != nil:
		return nil, status.Error(codes.ResourceExhausted, "overloaded: not enough memory free for the request; retry")
	}
	defer s.cfg.Memory.Release(n)
	return handler(ctx, req)
}

// validRequestID accepts ids the REST routes accept: up to 64 letters, digits, '-', '_' and '.'.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == ""
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// observe records each call's duration by method and code, and logs it (errors of ours at error level).
func (s *Server) observe(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	d := time.Since(start)
	code := status.Code(err)
	s.duration.WithLabelValues(info.FullMethod, code.String()).Observe(d.Seconds())
	fields := []zap.Field{zap.String("request_id", requestID(ctx)), zap.String("method", info.FullMethod),
		zap.String("code", code.String()), zap.Duration("duration", d)}
	switch code {
	case codes.OK:
		if s.log.Core().Enabled(zap.DebugLevel) {
			s.log.Debug("grpc", fields...)
		}
	case codes.Internal, codes.Unknown:
		s.log.Error("grpc", append(fields, zap.Error(err))...)
	default:
		s.log.Info("grpc", append(fields, zap.String("error", status.Convert(err).Message()))...)
	}
	return resp, err
}

// recoverPanic turns a panic in a handler into INTERNAL, logged with its stack, so one bad request cannot take the
// process down.
func (s *Server) recoverPanic(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in gRPC handler", zap.String("request_id", requestID(ctx)), zap.String("method", info.FullMethod),
				zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			resp, err = nil, status.Error(codes.Internal, "internal error")
		}
	}()
	return handler(ctx, req)
}

// statusOf maps an error of the engine or of image preparation to its gRPC status.
func statusOf(err error) error {
	var e *api.Error
	switch {
	case errors.As(err, &e):
		return status.Error(kindCode(e.Kind), e.Detail)
	case errors.Is(err, inference.ErrOverloaded):
		return status.Error(codes.ResourceExhausted, "overloaded: the inference queue is full; retry later")
	case errors.Is(err, inference.ErrClosed):
		return status.Error(codes.Unavailable, "shutting down")
	case errors.Is(err, inference.ErrInput):
		return status.Error(codes.Unavailable, "the model changed while the request was prepared; retry")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "the inference took too long")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "the client cancelled the call")
	}
	return status.Error(codes.Internal, "internal error")
}

// kindCode maps the API's error kinds to gRPC codes. Limits (too large) are the caller's to respect, not load to
// retry, so they are InvalidArgument rather than ResourceExhausted, which this service keeps for a full queue.
func kindCode(k api.Kind) codes.Code {
	switch k {
	case api.KindInvalid, api.KindTooLarge, api.KindUnsupported, api.KindUnprocessable:
		return codes.InvalidArgument
	case api.KindNotFound:
		return codes.NotFound
	case api.KindUnavailable:
		return codes.Unavailable
	case api.KindTimeout, api.KindSlow:
		return codes.DeadlineExceeded
	case api.KindTooMany:
		return codes.ResourceExhausted
	case api.KindUnauthorized:
		return codes.Unauthenticated
	}
	return codes.Internal
}
