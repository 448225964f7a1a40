package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/perceptron-dev/perceptron/internal/apitest"
	"github.com/perceptron-dev/perceptron/internal/mnisttest"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/oip"
	"github.com/perceptron-dev/perceptron/internal/oip/oippb"
	"github.com/perceptron-dev/perceptron/internal/testwait"
)

// digitRow is MNIST test digit i as one row of model input.
func digitRow(t *testing.T, i int) []float32 {
	set := mnisttest.Test(t)
	row := make([]float32, 784)
	for j, p := range set.X[i*784 : (i+1)*784] {
		row[j] = float32(p) / 255
	}
	return row
}

func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func rawInfer(name string, row []float32) *oippb.ModelInferRequest {
	return &oippb.ModelInferRequest{ModelName: name,
		Inputs:           []*oippb.ModelInferRequest_InferInputTensor{{Name: oip.InputName, Datatype: "FP32", Shape: []int64{1, 784}}},
		RawInputContents: [][]byte{oip.AppendFP32(nil, row)}}
}

// TestGRPCModelInferThroughDeadlinesSwapsAndTheDrain runs the whole server and a client generated from the same
// .proto: a call whose deadline passes is DEADLINE_EXCEEDED; clients under load see every call answered while the
// model is swapped back and forth (until each version has answered after a swap); and after SIGTERM the health
// service turns NOT_SERVING while calls are still answered, then the server stops cleanly.
func TestGRPCModelInferThroughDeadlinesSwapsAndTheDrain(t *testing.T) {
	dir := t.TempDir()
	// A second version to swap with: trained briefly, activated, so the embedded model is the other one.
	getenv := func(k string) string { return map[string]string{"MODEL_DIR": dir, "DATA_DIR": t.TempDir()}[k] }
	if err := run(context.Background(), []string{"server", "train", "-hidden", "16", "-epochs", "1", "-limit", "2000",
		"-activate", "always", "-quiet"}, getenv, nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	embedded, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	base, addr, stop := startServerGRPC(t, map[string]string{"MODEL_DIR": dir, "ADMIN_TOKEN": "grpc-token", "DRAIN_DELAY": "3s"})
	client := oippb.NewGRPCInferenceServiceClient(dialGRPC(t, addr))
	ctx := context.Background()
	meta, err := client.ModelMetadata(ctx, &oippb.ModelMetadataRequest{Name: embedded.Name})
	if err != nil {
		t.Fatal(err)
	}
	trained := meta.Versions[0]
	if trained == embedded.Version {
		t.Fatalf("the trained version %s is not active", trained)
	}
	row := digitRow(t, 0)

	t.Run("deadlines", func(t *testing.T) {
		dctx, cancel := context.WithTimeout(ctx, time.Microsecond)
		defer cancel()
		<-dctx.Done()
		if _, err := client.ModelInfer(dctx, rawInfer(embedded.Name, row)); status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("a call past its deadline: %v; want DeadlineExceeded", err)
		}
		dctx, cancel = context.WithTimeout(ctx, testwait.Timeout(t))
		defer cancel()
		if _, err := client.ModelInfer(dctx, rawInfer(embedded.Name, row)); err != nil {
			t.Errorf("a call within its deadline: %v", err)
		}
	})

	t.Run("swap under load", func(t *testing.T) {
		var answered [2]atomic.Int64 // by version: trained, embedded
		var calls, failed atomic.Int64
		var firstErr atomic.Value
		stopLoad := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stopLoad:
						return
					default:
					}
					resp, err := client.ModelInfer(ctx, rawInfer(embedded.Name, row))
					calls.Add(1)
					switch {
					case err != nil:
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
					case resp.ModelVersion == trained:
						answered[0].Add(1)
					case resp.ModelVersion == embedded.Version:
						answered[1].Add(1)
					}
				}
			})
		}
		activate := func(version string) {
			code, out := apitest.JSON(t, "POST", base+"/models/"+version+"/activate", "grpc-token", "")
			if code != 200 {
				t.Fatalf("activate %s: %d %v", version, code, out)
			}
		}
		// Each swap waits until the newly active version has answered a call under load: the swap is driven by
		// what the clients see, not by time.
		for i := range 4 {
			v, k := embedded.Version, 1
			if i%2 == 1 {
				v, k = trained, 0
			}
			before := answered[k].Load()
			activate(v)
			testwait.For(t, "a call answered by "+v, func() bool { return answered[k].Load() > before })
		}
		close(stopLoad)
		wg.Wait()
		t.Logf("%d calls across 4 swaps: %d by the trained version, %d by the embedded one", calls.Load(), answered[0].Load(), answered[1].Load())
		if failed.Load() > 0 {
			t.Errorf("%d of %d calls failed during swaps; first: %v", failed.Load(), calls.Load(), firstErr.Load())
		}
	})

	t.Run("drain", func(t *testing.T) {
		health := healthpb.NewHealthClient(dialGRPC(t, addr))
		stopped := make(chan error, 1)
		go func() { stopped <- stop() }()
		testwait.For(t, "health NOT_SERVING after SIGTERM", func() bool {
			r, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: oippb.GRPCInferenceService_ServiceDesc.ServiceName})
			return err == nil && r.Status == healthpb.HealthCheckResponse_NOT_SERVING
		})
		// Within DRAIN_DELAY the listener still serves: readiness says no, inference still answers.
		if r, err := client.ServerReady(ctx, &oippb.ServerReadyRequest{}); err != nil || r.Ready {
			t.Errorf("ServerReady while draining: %v, %v; want false", r, err)
		}
		if _, err := client.ModelInfer(ctx, rawInfer(embedded.Name, row)); err != nil {
			t.Errorf("a call while draining: %v", err)
		}
		if err := <-stopped; err != nil {
			t.Errorf("run returned %v after SIGTERM; want nil", err)
		}
		if _, err := client.ServerLive(ctx, &oippb.ServerLiveRequest{}); status.Code(err) != codes.Unavailable {
			t.Errorf("a call after the stop: %v; want Unavailable", err)
		}
	})
}

// TestGRPCurlCallsEveryMethod calls each method of the service with grpcurl, a real gRPC client that knows the
// service only from inference.proto. .ci/run installs grpcurl and sets PERCEPTRON_REAL_CLIENTS, and then a missing
// grpcurl fails the test; elsewhere it is skipped without one.
func TestGRPCurlCallsEveryMethod(t *testing.T) {
	bin, err := exec.LookPath("grpcurl")
	if err != nil {
		if gopath, e := exec.Command("go", "env", "GOPATH").Output(); e == nil {
			if p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "grpcurl"); fileExists(p) {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		if os.Getenv("PERCEPTRON_REAL_CLIENTS") != "" {
			t.Fatalf("grpcurl is not installed, and PERCEPTRON_REAL_CLIENTS is set: %v", err)
		}
		t.Skip("grpcurl is not installed (go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4)")
	}
	_, file, _, _ := runtime.Caller(0)
	protoDir := filepath.Join(filepath.Dir(file), "..", "..", "internal", "oip", "oippb")
	_, addr, _ := startServerGRPC(t, nil)
	embedded, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	call := func(method string, req any) map[string]any {
		t.Helper()
		body, _ := json.Marshal(req)
		cmd := exec.Command(bin, "-plaintext", "-import-path", protoDir, "-proto", "inference.proto", "-d", "@",
			addr, "inference.GRPCInferenceService/"+method)
		cmd.Stdin = bytes.NewReader(body)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("grpcurl %s: %v\n%s", method, err, stderr.String())
		}
		var resp map[string]any
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("grpcurl %s printed %s: %v", method, out, err)
		}
		return resp
	}
	name := embedded.Name
	for method, want := range map[string]string{
		"ServerLive":     `"live":true`,
		"ServerReady":    `"ready":true`,
		"ServerMetadata": `"extensions":["binary_tensor_data"]`,
	} {
		if got := call(method, map[string]any{}); !strings.Contains(compact(got), want) {
			t.Errorf("%s: %s; want %s", method, compact(got), want)
		}
	}
	if got := call("ModelReady", map[string]any{"name": name}); got["ready"] != true {
		t.Errorf("ModelReady: %v", got)
	}
	if got := call("ModelMetadata", map[string]any{"name": name}); got["platform"] != oip.Platform || !strings.Contains(compact(got), `"shape":["-1","784"]`) {
		t.Errorf("ModelMetadata: %s", compact(got))
	}

	row := digitRow(t, 0)
	png, label := mnisttest.PNG(t, 0)
	tensor := func(datatype string, shape []int, contents map[string]any) map[string]any {
		m := map[string]any{"name": "input", "datatype": datatype, "shape": shape}
		if contents != nil {
			m["contents"] = contents
		}
		return m
	}
	for _, c := range []struct {
		name string
		req  map[string]any
		raw  bool
	}{
		{"FP32 contents", map[string]any{"model_name": name, "inputs": []any{tensor("FP32", []int{1, 784}, map[string]any{"fp32_contents": row})}}, false},
		{"raw contents", map[string]any{"model_name": name, "inputs": []any{tensor("FP32", []int{1, 784}, nil)},
			"raw_input_contents": []string{base64.StdEncoding.EncodeToString(oip.AppendFP32(nil, row))}}, true},
		{"a BYTES PNG", map[string]any{"model_name": name, "inputs": []any{tensor("BYTES", []int{1}, map[string]any{"bytes_contents": []string{base64.StdEncoding.EncodeToString(png)}})}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := call("ModelInfer", c.req)
			var probs []float32
			if c.raw {
				raw, _ := got["rawOutputContents"].([]any)
				if len(raw) != 1 {
					t.Fatalf("no raw output for a raw input: %s", compact(got))
				}
				b, _ := base64.StdEncoding.DecodeString(raw[0].(string))
				if probs, err = oip.ReadFP32(nil, b, 10); err != nil {
					t.Fatal(err)
				}
			} else {
				outs, _ := got["outputs"].([]any)
				if len(outs) != 1 {
					t.Fatalf("outputs: %s", compact(got))
				}
				contents, _ := outs[0].(map[string]any)["contents"].(map[string]any)
				for _, v := range contents["fp32Contents"].([]any) {
					probs = append(probs, float32(v.(float64)))
				}
			}
			best := 0
			for i, p := range probs {
				if p > probs[best] {
					best = i
				}
			}
			if len(probs) != 10 || best != label {
				t.Errorf("probabilities %v (argmax %d); want 10 with the digit's label %d first", probs, best, label)
			}
		})
	}
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
