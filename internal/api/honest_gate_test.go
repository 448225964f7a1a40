package api

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// TestGateAnswersNotADigit serves the default model with a gate whose answer is fixed by its output bias (its
// weights are zero): when the gate's "not a digit" probability is over its threshold, an image keeps its label and
// probabilities but is answered not_a_digit through /predict and /v2 whatever min_confidence, and counted so in
// perceptron_predictions_total; under it the confidence decides as before; an image without ink stays
// no_digit_found.
func TestGateAnswersNotADigit(t *testing.T) {
	srv, eng := newTestServer(t, Config{})
	net, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	digit, label := digitPNG(t, 0)
	blank := issuePictures()[0].data
	for _, tc := range []struct {
		name string
		bias float32 // of the "not a digit" output: its probability is 1/(1+e^-bias)
		want string
	}{
		{"a gate that takes every input for a digit lets it through", -8, ""},
		{"a gate that takes every input for something else answers not_a_digit", 8, OutcomeNotDigit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := net.Clone()
			g := model.NewMLP[float32]([]int{784, 1, 2}, model.ReLU)
			g.Layers[1].B[model.GateNotDigit] = tc.bias
			n.SetGate(&model.Gate{Threshold: 0.5}, g)
			eng.Swap(n)
			for _, q := range []string{"", "?min_confidence=0"} {
				resp, body := post(t, srv.URL+"/predict"+q, "image/png", digit)
				p := decodePredictions(t, resp, body).Predictions[0]
				if p.Reason != tc.want || p.Accepted != (tc.want == "") || p.Index != label {
					t.Errorf("/predict%s: %s; want label %d, reason %q", q, body, label, tc.want)
				}
			}
			req := fmt.Sprintf(`{"parameters":{"min_confidence":0},"inputs":[{"name":"image","shape":[2],"datatype":"BYTES","data":[%q,%q]}],"outputs":[{"name":"reason"}]}`,
				base64.StdEncoding.EncodeToString(digit), base64.StdEncoding.EncodeToString(blank))
			resp, body := post(t, srv.URL+"/v2/models/mnist-mlp/infer", "application/json", []byte(req))
			if want := fmt.Sprintf(`"data":[%q,"no_digit_found"]`, tc.want); resp.StatusCode != 200 || !strings.Contains(compact(body), want) {
				t.Errorf("/v2: status %d %s; want %s", resp.StatusCode, body, want)
			}
		})
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(metrics), `outcome="not_a_digit"`) {
		t.Error("no not_a_digit answers counted in /metrics")
	}
}
