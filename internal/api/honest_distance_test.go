package api

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/mnisttest"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/train"
)

// TestFeatureDistanceAnswersNotADigit serves the default model with a feature distance fitted on a slice of the
// training data, and moves its threshold: beyond it an image keeps its label and probabilities but is answered
// not_a_digit through /predict and /v2 whatever min_confidence; within it the confidence decides as before; an
// image without ink stays no_digit_found.
func TestFeatureDistanceAnswersNotADigit(t *testing.T) {
	srv, eng := newTestServer(t, Config{})
	net, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	set := mnisttest.Train(t)
	fd, err := train.FitFeatureDistance(net, set.Head(3000), set.Subset(rangeOf(3000, 3500)), train.DefaultRejectInDistribution, false)
	if err != nil {
		t.Fatal(err)
	}
	if fd.Examples != 3000 || fd.Threshold <= 0 {
		t.Fatalf("feature distance on 3000 examples: %d examples, threshold %v", fd.Examples, fd.Threshold)
	}
	digit, label := digitPNG(t, 0)
	blank := issuePictures()[0].data
	for _, tc := range []struct {
		name      string
		threshold float64
		want      string
	}{
		{"a digit within ten times the threshold is accepted", 10 * fd.Threshold, ""},
		{"a digit beyond a tiny threshold is not a digit", 1e-6, OutcomeNotDigit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := net.Clone()
			f := *fd
			f.Threshold = tc.threshold
			n.FeatureDistance = &f
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
}

// rangeOf returns the indices lo..hi-1.
func rangeOf(lo, hi int) []int {
	idx := make([]int, 0, hi-lo)
	for i := lo; i < hi; i++ {
		idx = append(idx, i)
	}
	return idx
}
