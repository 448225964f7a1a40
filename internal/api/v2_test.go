package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/apitest"
)

// The JSON shapes below follow the Open Inference Protocol's REST specification (KServe "v2"): health
// {"live"}/{"ready"}, model metadata {"name","versions","platform","inputs","outputs"}, inference requests
// {"id","inputs":[{"name","shape","datatype","data"}]} and responses {"model_name","model_version","id","outputs"},
// errors {"error"}.

func TestV2HealthAndMetadata(t *testing.T) {
	srv, e := newTestServer(t, Config{})
	name := e.Model().Name
	for path, want := range map[string]string{
		"/v2/health/live":               `"live": true`,
		"/v2/health/ready":              `"ready": true`,
		"/v2/models/" + name + "/ready": `"ready": true`,
	} {
		resp, body := apitest.Do(t, "GET", srv.URL+path, "", "")
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %s; want 200 with %s", path, resp.StatusCode, body, want)
		}
	}
	resp, body := apitest.Do(t, "GET", srv.URL+"/v2/models/"+name, "", "")
	var meta struct {
		Name     string
		Versions []string
		Platform string
		Inputs   []struct {
			Name, Datatype string
			Shape          []int
		}
		Outputs []struct {
			Name, Datatype string
			Shape          []int
		}
	}
	json.Unmarshal(body, &meta)
	if resp.StatusCode != 200 || meta.Name != name || len(meta.Versions) != 1 || meta.Inputs[0].Datatype != "FP32" ||
		meta.Inputs[0].Shape[1] != 784 || meta.Outputs[0].Shape[1] != 10 {
		t.Errorf("metadata: %d %s", resp.StatusCode, body)
	}
	resp, body = apitest.Do(t, "GET", srv.URL+"/v2/models/other", "", "")
	if resp.StatusCode != 404 || !strings.Contains(string(body), `"error"`) {
		t.Errorf("unknown model: %d %s; want 404 with an error", resp.StatusCode, body)
	}
}

func TestV2InferFP32AndBytes(t *testing.T) {
	srv, e := newTestServer(t, Config{})
	url := srv.URL + "/v2/models/" + e.Model().Name + "/infer"
	s := testDigits(t)
	rows := make([][]float64, 3)
	var imgs []string
	var labels []int
	for i := range rows {
		rows[i] = make([]float64, 784)
		for j, p := range s.Image(i) {
			rows[i][j] = float64(p) / 255
		}
		png, label := digitPNG(t, i)
		imgs = append(imgs, base64.StdEncoding.EncodeToString(png))
		labels = append(labels, label)
	}
	nested, _ := json.Marshal(rows)
	var flat []float64
	for _, r := range rows {
		flat = append(flat, r...)
	}
	flatJSON, _ := json.Marshal(flat)
	imgsJSON, _ := json.Marshal(imgs)
	for _, tt := range []struct{ name, body string }{
		{"FP32 nested", fmt.Sprintf(`{"id":"r1","inputs":[{"name":"input","shape":[3,784],"datatype":"FP32","data":%s}]}`, nested)},
		{"FP32 flat", fmt.Sprintf(`{"id":"r1","inputs":[{"name":"input","shape":[3,784],"datatype":"FP32","data":%s}],"outputs":[{"name":"probabilities"}]}`, flatJSON)},
		{"BYTES images", fmt.Sprintf(`{"id":"r1","inputs":[{"name":"image","shape":[3],"datatype":"BYTES","data":%s}]}`, imgsJSON)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := apitest.Do(t, "POST", url, "", tt.body)
			var out struct {
				ModelName    string `json:"model_name"`
				ModelVersion string `json:"model_version"`
				ID           string
				Outputs      []struct {
					Name, Datatype string
					Shape          []int
					Data           []float64
				}
			}
			if err := json.Unmarshal(body, &out); err != nil || resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			o := out.Outputs[0]
			if out.ID != "r1" || out.ModelVersion == "" || o.Name != "probabilities" || o.Datatype != "FP32" ||
				o.Shape[0] != 3 || o.Shape[1] != 10 || len(o.Data) != 30 {
				t.Fatalf("response %s", body)
			}
			for i := range 3 {
				row := o.Data[i*10 : (i+1)*10]
				best, sum := 0, 0.0
				for j, p := range row {
					sum += p
					if p > row[best] {
						best = j
					}
				}
				if best != labels[i] || math.Abs(sum-1) > 1e-4 {
					t.Errorf("row %d: argmax %d (want %d), sum %v", i, best, labels[i], sum)
				}
			}
		})
	}
}

func TestV2InferErrors(t *testing.T) {
	srv, e := newTestServer(t, Config{})
	url := srv.URL + "/v2/models/" + e.Model().Name + "/infer"
	for _, tt := range []struct {
		name, body string
		status     int
	}{
		{"malformed JSON", `{"inputs": [`, 400},
		{"no inputs", `{"inputs": []}`, 400},
		{"wrong shape", `{"inputs":[{"name":"input","shape":[1,10],"datatype":"FP32","data":[0,0,0,0,0,0,0,0,0,0]}]}`, 400},
		{"too few values", `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":[0.5]}]}`, 400},
		{"ragged rows of 700 and 868 values for [2,784]", `{"inputs":[{"name":"input","shape":[2,784],"datatype":"FP32","data":[[` +
			strings.Repeat("0.5,", 699) + `0.5],[` + strings.Repeat("0.5,", 867) + `0.5]]}]}`, 400},
		{"out of range", `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":[` + strings.Repeat("7,", 783) + `7]}]}`, 400},
		{"strings as FP32", `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":["a"]}]}`, 400},
		{"unsupported datatype", `{"inputs":[{"name":"input","shape":[1,784],"datatype":"INT8","data":[]}]}`, 400},
		{"bad base64", `{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["***"]}]}`, 400},
		{"not an image", `{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["` + base64.StdEncoding.EncodeToString([]byte("hello")) + `"]}]}`, 422},
		{"unknown output", `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":[]}],"outputs":[{"name":"logits"}]}`, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := apitest.Do(t, "POST", url, "", tt.body)
			var out struct{ Error string }
			json.Unmarshal(body, &out)
			if resp.StatusCode != tt.status || out.Error == "" {
				t.Errorf("%d %s; want %d with {\"error\"}", resp.StatusCode, body, tt.status)
			}
		})
	}
	resp, _ := apitest.Do(t, "POST", srv.URL+"/v2/models/nope/infer", "", `{}`)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("infer on an unknown model: %d; want 404", resp.StatusCode)
	}
}
