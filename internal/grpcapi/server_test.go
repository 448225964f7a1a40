package grpcapi

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/perceptron-dev/perceptron/internal/api"
	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/mnisttest"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/oip"
	"github.com/perceptron-dev/perceptron/internal/oip/oippb"
	"github.com/perceptron-dev/perceptron/internal/testwait"
)

// kit is a gRPC server on an in-memory listener with the embedded model, and a client connected to it.
type kit struct {
	srv    *Server
	engine *inference.Engine
	rest   *api.Server
	reg    *prometheus.Registry
	conn   *grpc.ClientConn
	client oippb.GRPCInferenceServiceClient
	net    *model.Network
}

func newKit(t testing.TB, cfg Config, ecfg inference.Config) *kit {
	t.Helper()
	net0, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := api.NewMetrics(reg)
	if ecfg.Observer == nil {
		ecfg.Observer = m
	}
	e := inference.New(ecfg, net0)
	t.Cleanup(e.Close)
	rest := api.NewServer(zap.NewNop(), api.Config{}, reg, m, e, nil, nil, nil)
	s := New(zap.NewNop(), cfg, reg, e, rest, m)
	ln := bufconn.Listen(1 << 20)
	go s.Serve(ln)
	t.Cleanup(func() { s.Stop(context.Background()) })
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &kit{srv: s, engine: e, rest: rest, reg: reg, conn: conn, client: oippb.NewGRPCInferenceServiceClient(conn), net: net0}
}

// digits returns n MNIST test digits as model input rows (the IDX pixels scaled to 0..1).
func digits(t *testing.T, n int) []float32 {
	set := mnisttest.Test(t)
	x := make([]float32, 0, n*784)
	for i := range n {
		for _, p := range set.X[i*784 : (i+1)*784] {
			x = append(x, float32(p)/255)
		}
	}
	return x
}

func fp32Request(name string, x []float32, n int, raw bool) *oippb.ModelInferRequest {
	in := &oippb.ModelInferRequest_InferInputTensor{Name: oip.InputName, Datatype: "FP32", Shape: []int64{int64(n), 784}}
	req := &oippb.ModelInferRequest{ModelName: name, Id: "r1", Inputs: []*oippb.ModelInferRequest_InferInputTensor{in}}
	if raw {
		req.RawInputContents = [][]byte{oip.AppendFP32(nil, x)}
	} else {
		in.Contents = &oippb.InferTensorContents{Fp32Contents: x}
	}
	return req
}

func probs(t *testing.T, resp *oippb.ModelInferResponse) []float32 {
	t.Helper()
	if len(resp.Outputs) != 1 || resp.Outputs[0].Name != oip.OutputName || resp.Outputs[0].Datatype != "FP32" {
		t.Fatalf("outputs %v; want one FP32 %q", resp.Outputs, oip.OutputName)
	}
	if len(resp.RawOutputContents) == 1 {
		if resp.Outputs[0].Contents != nil {
			t.Fatal("raw and typed output contents both set")
		}
		p, err := oip.ReadFP32(nil, resp.RawOutputContents[0], len(resp.RawOutputContents[0])/4)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	return resp.Outputs[0].Contents.GetFp32Contents()
}

func TestModelInferAnswersAsTheEngineDoesInEveryInputForm(t *testing.T) {
	k := newKit(t, Config{}, inference.Config{Workers: 1})
	const n = 3
	x := digits(t, n)
	want, err := k.engine.Predict(context.Background(), x, n, 784)
	if err != nil {
		t.Fatal(err)
	}
	pngs := make([][]byte, n)
	for i := range pngs {
		pngs[i], _ = mnisttest.PNG(t, i)
	}
	fromImages, got, err := k.rest.PrepareImages(context.Background(), pngs, k.net.Input)
	if err != nil || got != n {
		t.Fatalf("PrepareImages: %d rows, %v", got, err)
	}
	wantImages, err := k.engine.Predict(context.Background(), fromImages, n, 784)
	if err != nil {
		t.Fatal(err)
	}
	var rawBytes []byte
	for _, p := range pngs {
		rawBytes = oip.AppendBytes(rawBytes, p)
	}
	bytesIn := func(name string, shape []int64, typed [][]byte, raw []byte) *oippb.ModelInferRequest {
		in := &oippb.ModelInferRequest_InferInputTensor{Name: name, Datatype: "BYTES", Shape: shape}
		req := &oippb.ModelInferRequest{ModelName: k.net.Name, ModelVersion: k.net.Version, Id: "r1",
			Inputs: []*oippb.ModelInferRequest_InferInputTensor{in}}
		if raw != nil {
			req.RawInputContents = [][]byte{raw}
		} else {
			in.Contents = &oippb.InferTensorContents{BytesContents: typed}
		}
		return req
	}
	for _, c := range []struct {
		name    string
		req     *oippb.ModelInferRequest
		wantRaw bool
		want    []float32
	}{
		{"FP32 typed contents", fp32Request(k.net.Name, x, n, false), false, want.Probs},
		{"FP32 raw contents", fp32Request(k.net.Name, x, n, true), true, want.Probs},
		{"BYTES PNGs typed, named input", bytesIn(oip.InputName, []int64{n}, pngs, nil), false, wantImages.Probs},
		{"BYTES PNGs raw, named image, shape [N,1]", bytesIn(oip.ImageName, []int64{n, 1}, nil, rawBytes), true, wantImages.Probs},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, err := k.client.ModelInfer(context.Background(), c.req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.ModelName != k.net.Name || resp.ModelVersion != k.net.Version || resp.Id != "r1" {
				t.Errorf("model %q version %q id %q; want %q %q r1", resp.ModelName, resp.ModelVersion, resp.Id, k.net.Name, k.net.Version)
			}
			if got := resp.Outputs[0].Shape; !slices.Equal(got, []int64{n, 10}) {
				t.Errorf("shape %v; want [%d 10]", got, n)
			}
			if got := len(resp.RawOutputContents) == 1; got != c.wantRaw {
				t.Errorf("raw output %v; want %v (raw exactly when the input was raw)", got, c.wantRaw)
			}
			if got := probs(t, resp); !slices.Equal(got, c.want) {
				t.Errorf("probabilities differ from the engine's for the same rows:\n got %v\nwant %v", got[:10], c.want[:10])
			}
		})
	}
}

func TestModelInferRefusesBadRequestsWithTheirCodes(t *testing.T) {
	k := newKit(t, Config{MaxImages: 4}, inference.Config{Workers: 1})
	name := k.net.Name
	x := digits(t, 1)
	withInput := func(f func(*oippb.ModelInferRequest)) *oippb.ModelInferRequest {
		req := fp32Request(name, x, 1, false)
		f(req)
		return req
	}
	longPrefix := binary.LittleEndian.AppendUint32(nil, 1000)
	for _, c := range []struct {
		name string
		req  *oippb.ModelInferRequest
		code codes.Code
		msg  string
	}{
		{"an unknown model", fp32Request("nope", x, 1, false), codes.NotFound, `model "nope" is not served`},
		{"a version not loaded", withInput(func(r *oippb.ModelInferRequest) { r.ModelVersion = "v0" }), codes.NotFound, "not loaded"},
		{"no input", withInput(func(r *oippb.ModelInferRequest) { r.Inputs = nil }), codes.InvalidArgument, "expected one input"},
		{"an unknown input name", withInput(func(r *oippb.ModelInferRequest) { r.Inputs[0].Name = "pixels" }), codes.InvalidArgument, `unknown input "pixels"`},
		{"FP32 named image", withInput(func(r *oippb.ModelInferRequest) { r.Inputs[0].Name = oip.ImageName }), codes.InvalidArgument, "unknown input"},
		{"an unknown output", withInput(func(r *oippb.ModelInferRequest) {
			r.Outputs = []*oippb.ModelInferRequest_InferRequestedOutputTensor{{Name: "logits"}}
		}), codes.InvalidArgument, `unknown output "logits"`},
		{"a wrong shape", withInput(func(r *oippb.ModelInferRequest) { r.Inputs[0].Shape = []int64{1, 783} }), codes.InvalidArgument, "want [N,784]"},
		{"too many rows", withInput(func(r *oippb.ModelInferRequest) { r.Inputs[0].Shape = []int64{5, 784} }), codes.InvalidArgument, "at most 4"},
		{"too few values", withInput(func(r *oippb.ModelInferRequest) { r.Inputs[0].Contents.Fp32Contents = x[:700] }), codes.InvalidArgument, "needs 784"},
		{"a value out of range", withInput(func(r *oippb.ModelInferRequest) {
			r.Inputs[0].Contents.Fp32Contents = append(slices.Clone(x[:783]), 7)
		}), codes.InvalidArgument, "outside 0..1"},
		{"a NaN", withInput(func(r *oippb.ModelInferRequest) {
			r.Inputs[0].Contents.Fp32Contents = append(slices.Clone(x[:783]), float32(math.NaN()))
		}), codes.InvalidArgument, "outside 0..1"},
		{"raw bytes that do not fit the shape", withInput(func(r *oippb.ModelInferRequest) {
			r.Inputs[0].Contents = nil
			r.RawInputContents = [][]byte{make([]byte, 784*4-1)}
		}), codes.InvalidArgument, "3135 bytes for 784 FP32"},
		{"raw and typed contents together", withInput(func(r *oippb.ModelInferRequest) {
			r.RawInputContents = [][]byte{oip.AppendFP32(nil, x)}
		}), codes.InvalidArgument, "both contents and raw"},
		{"two raw contents for one input", withInput(func(r *oippb.ModelInferRequest) {
			r.Inputs[0].Contents = nil
			r.RawInputContents = [][]byte{oip.AppendFP32(nil, x), {}}
		}), codes.InvalidArgument, "2 raw_input_contents for 1 inputs"},
		{"an unsupported datatype", withInput(func(r *oippb.ModelInferRequest) { r.Inputs[0].Datatype = "INT8" }), codes.InvalidArgument, `datatype "INT8"`},
		{"a BYTES length prefix beyond its tensor", withInput(func(r *oippb.ModelInferRequest) {
			r.Inputs[0].Datatype, r.Inputs[0].Shape, r.Inputs[0].Contents = "BYTES", []int64{1}, nil
			r.RawInputContents = [][]byte{append(longPrefix, "short"...)}
		}), codes.InvalidArgument, "says 1000 bytes but 5 are left"},
		{"BYTES that are not an image", withInput(func(r *oippb.ModelInferRequest) {
			r.Inputs[0].Datatype, r.Inputs[0].Shape = "BYTES", []int64{1}
			r.Inputs[0].Contents = &oippb.InferTensorContents{BytesContents: [][]byte{[]byte("hello")}}
		}), codes.InvalidArgument, "not a decodable image"},
		{"BYTES fewer than the shape says", withInput(func(r *oippb.ModelInferRequest) {
			r.Inputs[0].Datatype, r.Inputs[0].Shape = "BYTES", []int64{2}
			r.Inputs[0].Contents = &oippb.InferTensorContents{BytesContents: [][]byte{[]byte("hello")}}
		}), codes.InvalidArgument, "holds 1 images; shape [2] says 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := k.client.ModelInfer(context.Background(), c.req)
			st := status.Convert(err)
			if st.Code() != c.code || !strings.Contains(st.Message(), c.msg) {
				t.Errorf("got %v %q; want %v containing %q", st.Code(), st.Message(), c.code, c.msg)
			}
		})
	}
}

func TestMetadataHealthAndReadinessFollowTheDrain(t *testing.T) {
	k := newKit(t, Config{Version: "1.2.3"}, inference.Config{Workers: 1})
	ctx := context.Background()
	md, err := k.client.ServerMetadata(ctx, &oippb.ServerMetadataRequest{})
	if err != nil || md.Name != oip.ServerName || md.Version != "1.2.3" || !slices.Equal(md.Extensions, oip.Extensions()) {
		t.Errorf("server metadata %v, %v", md, err)
	}
	mm, err := k.client.ModelMetadata(ctx, &oippb.ModelMetadataRequest{Name: k.net.Name})
	if err != nil || mm.Platform != oip.Platform || len(mm.Inputs) != 1 || mm.Inputs[0].Name != oip.InputName ||
		!slices.Equal(mm.Inputs[0].Shape, []int64{-1, 784}) || !slices.Equal(mm.Outputs[0].Shape, []int64{-1, 10}) ||
		!slices.Equal(mm.Versions, []string{k.net.Version}) {
		t.Errorf("model metadata %v, %v", mm, err)
	}
	if _, err := k.client.ModelMetadata(ctx, &oippb.ModelMetadataRequest{Name: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("metadata of an unknown model: %v; want NotFound", err)
	}
	health := healthpb.NewHealthClient(k.conn)
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		r, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("health check %q: %v", service, err)
		}
		return r.Status
	}
	ready := func() (server, model bool) {
		s, err := k.client.ServerReady(ctx, &oippb.ServerReadyRequest{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := k.client.ModelReady(ctx, &oippb.ModelReadyRequest{Name: k.net.Name})
		if err != nil {
			t.Fatal(err)
		}
		return s.Ready, m.Ready
	}
	live, err := k.client.ServerLive(ctx, &oippb.ServerLiveRequest{})
	if err != nil || !live.Live {
		t.Errorf("live %v, %v", live, err)
	}
	service := oippb.GRPCInferenceService_ServiceDesc.ServiceName
	if s, m := ready(); !s || !m || check("") != healthpb.HealthCheckResponse_SERVING || check(service) != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("before the drain: ready %v/%v, health %v/%v; want ready and serving", s, m, check(""), check(service))
	}
	k.srv.Drain()
	if s, m := ready(); s || m || check("") != healthpb.HealthCheckResponse_NOT_SERVING || check(service) != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("draining: ready %v/%v, health %v/%v; want neither", s, m, check(""), check(service))
	}
	// Inference still works while draining, for the calls that were already on their way.
	if _, err := k.client.ModelInfer(ctx, fp32Request(k.net.Name, digits(t, 1), 1, true)); err != nil {
		t.Errorf("infer while draining: %v", err)
	}
}

// gate holds the first batch's worker until released, so a test can fill the queue.
type gate struct {
	entered, release chan struct{}
	once             sync.Once
}

func (g *gate) Batch(int, int, time.Duration) {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.release
	}
}
func (g *gate) Waited(time.Duration) {}
func (g *gate) Dropped()             {}

func TestAFullQueueIsResourceExhaustedAndADeadlineIsDeadlineExceeded(t *testing.T) {
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	k := newKit(t, Config{}, inference.Config{Workers: 1, MaxBatch: 1, QueueSize: 1, Observer: g})
	x := digits(t, 1)
	first := make(chan error, 1)
	go func() {
		_, err := k.client.ModelInfer(context.Background(), fp32Request(k.net.Name, x, 1, true))
		first <- err
	}()
	<-g.entered
	// The queue holds one image: a call with a deadline waits there until its deadline passes.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	waiting := make(chan error, 1)
	go func() {
		_, err := k.client.ModelInfer(ctx, fp32Request(k.net.Name, x, 1, true))
		waiting <- err
	}()
	testwait.For(t, "a full queue", func() bool { return k.engine.Stats().QueuedImages == 1 })
	_, err := k.client.ModelInfer(context.Background(), fp32Request(k.net.Name, x, 1, true))
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("call beyond the queue: %v; want ResourceExhausted", err)
	}
	close(g.release)
	if err := <-first; err != nil {
		t.Errorf("first call: %v", err)
	}
	if err := <-waiting; err != nil {
		t.Errorf("queued call: %v", err)
	}

	// A deadline already gone when the engine answers is DEADLINE_EXCEEDED from the server (called directly: a
	// client would not send a call whose deadline has passed).
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	if _, err := k.srv.ModelInfer(expired, fp32Request(k.net.Name, x, 1, true)); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("expired deadline: %v; want DeadlineExceeded", err)
	}
}

func TestInterceptorsRecoverPanicsCountCallsAndCarryRequestIDs(t *testing.T) {
	k := newKit(t, Config{}, inference.Config{Workers: 1})
	info := &grpc.UnaryServerInfo{FullMethod: "/test/Panic"}
	_, err := k.srv.recoverPanic(context.Background(), nil, info, func(context.Context, any) (any, error) { panic("boom") })
	if status.Code(err) != codes.Internal {
		t.Errorf("panic: %v; want Internal", err)
	}

	var header metadata.MD
	ctx := metadata.AppendToOutgoingContext(context.Background(), requestIDHeader, "client-id-1")
	if _, err := k.client.ServerLive(ctx, &oippb.ServerLiveRequest{}, grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	if got := header.Get(requestIDHeader); !slices.Equal(got, []string{"client-id-1"}) {
		t.Errorf("request id %v; want the client's", got)
	}
	ctx = metadata.AppendToOutgoingContext(context.Background(), requestIDHeader, "bad id!")
	if _, err := k.client.ModelReady(ctx, &oippb.ModelReadyRequest{Name: "nope"}, grpc.Header(&header)); status.Code(err) != codes.NotFound {
		t.Fatalf("%v; want NotFound", err)
	}
	if got := header.Get(requestIDHeader); len(got) != 1 || len(got[0]) != 16 {
		t.Errorf("request id %v for an invalid client id; want one made by the server", got)
	}

	for _, c := range []struct {
		method, code string
	}{
		{"/inference.GRPCInferenceService/ServerLive", "OK"},
		{"/inference.GRPCInferenceService/ModelReady", "NotFound"},
	} {
		if n := testutil.CollectAndCount(k.srv.duration.WithLabelValues(c.method, c.code).(prometheus.Histogram)); n != 1 {
			t.Errorf("%s %s: %d series", c.method, c.code, n)
		}
		h := k.srv.duration.WithLabelValues(c.method, c.code).(prometheus.Histogram)
		if got := histCount(t, h); got != 1 {
			t.Errorf("%s %s observed %d times; want 1", c.method, c.code, got)
		}
	}
}

func histCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	var m = make(chan prometheus.Metric, 1)
	h.Collect(m)
	var pb dto.Metric
	if err := (<-m).Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.GetHistogram().GetSampleCount()
}

func TestMessagesOverTheSizeLimitAreRefused(t *testing.T) {
	k := newKit(t, Config{MaxRecvMsgSize: 64 << 10}, inference.Config{Workers: 1})
	x := make([]float32, 32*784)
	_, err := k.client.ModelInfer(context.Background(), fp32Request(k.net.Name, x, 32, true))
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("100 KB message with a 64 KiB limit: %v; want ResourceExhausted", err)
	}
	if _, err := k.client.ModelInfer(context.Background(), fp32Request(k.net.Name, x[:784], 1, true)); err != nil {
		t.Errorf("small message: %v", err)
	}
}

func TestStopCancelsCallsLeftAfterItsContextEnds(t *testing.T) {
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	k := newKit(t, Config{}, inference.Config{Workers: 1, Observer: g})
	defer close(g.release)
	x := digits(t, 1)
	done := make(chan error, 1)
	go func() {
		_, err := k.client.ModelInfer(context.Background(), fp32Request(k.net.Name, x, 1, true))
		done <- err
	}()
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	k.srv.Stop(ctx) // returns although a call is in flight
	if err := <-done; status.Code(err) != codes.Unavailable && status.Code(err) != codes.Canceled {
		t.Errorf("call cut by Stop: %v; want Unavailable or Canceled", err)
	}
	if !errors.Is(context.Cause(ctx), context.Canceled) {
		t.Fatal("unreachable")
	}
}

// TestRequestsHoldTheirSizeFromTheMemoryBudget: a call counts against MEMORY_LIMIT while it is answered, one that
// could never fit is refused, and one that does not fit now is refused at once rather than queued.
func TestRequestsHoldTheirSizeFromTheMemoryBudget(t *testing.T) {
	budget := membudget.New(64 << 10)
	k := newKit(t, Config{Memory: budget}, inference.Config{Workers: 1})
	one := fp32Request(k.net.Name, digits(t, 1), 1, true) // about 3 KB
	if _, err := k.client.ModelInfer(context.Background(), one); err != nil {
		t.Fatalf("a small call within the budget: %v", err)
	}
	if used := budget.Used(); used != 0 {
		t.Errorf("after the call the budget holds %d bytes; want 0", used)
	}
	if peak := budget.Peak(); peak < 2*int64(proto.Size(one)) {
		t.Errorf("the budget's peak is %d bytes; want the call's twice its %d bytes held", peak, proto.Size(one))
	}
	big := fp32Request(k.net.Name, make([]float32, 16*784), 16, true) // about 50 KB, held twice: over 64 KiB
	if _, err := k.client.ModelInfer(context.Background(), big); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a call that can never fit: %v; want ResourceExhausted", err)
	}
	if err := budget.TryReserve(60 << 10); err != nil {
		t.Fatal(err)
	}
	if _, err := k.client.ModelInfer(context.Background(), one); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a call while the budget is in use: %v; want ResourceExhausted", err)
	}
	budget.Release(60 << 10)
}
