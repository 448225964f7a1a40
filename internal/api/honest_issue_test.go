package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/train"
	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

// issuePictures are the pictures a new user tried: none holds a digit, and each was once answered with one.
func issuePictures() []struct {
	name string
	data []byte
} {
	rng := rand.New(rand.NewPCG(16, 16))
	blank := image.NewGray(image.Rect(0, 0, 400, 300))
	for i := range blank.Pix {
		blank.Pix[i] = 255
	}
	noise := image.NewRGBA(image.Rect(0, 0, 200, 200))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(rng.IntN(256))
		if i%4 == 3 {
			noise.Pix[i] = 255
		}
	}
	gradient := image.NewGray(image.Rect(0, 0, 256, 128))
	for y := range 128 {
		for x := range 256 {
			gradient.Pix[y*gradient.Stride+x] = uint8(x)
		}
	}
	disc := image.NewRGBA(image.Rect(0, 0, 240, 240))
	for y := range 240 {
		for x := range 240 {
			c := color.RGBA{30, 170, 50, 255}
			if math.Hypot(float64(x-120), float64(y-120)) < 80 {
				c = color.RGBA{220, 20, 30, 255}
			}
			disc.SetRGBA(x, y, c)
		}
	}
	return []struct {
		name string
		data []byte
	}{
		{"a blank white page", uploadtest.EncodePNG(blank)},
		{"a photo of random noise", uploadtest.EncodeJPEG(noise, 85)},
		{"a grey gradient", uploadtest.EncodePNG(gradient)},
		{"a red disc on a green background", uploadtest.EncodePNG(disc)},
	}
}

func TestTheIssuesPicturesGetHonestAnswers(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	digit, label := digitPNG(t, 0)
	for _, pic := range issuePictures() {
		t.Run(pic.name+" through /predict", func(t *testing.T) {
			resp, body := post(t, srv.URL+"/predict", "image/png", pic.data)
			out := decodePredictions(t, resp, body)
			if p := out.Predictions[0]; p.Accepted || p.Reason != OutcomeNoDigit || !strings.Contains(string(body), `"label":null`) {
				t.Errorf("got %s; want label null, accepted false, reason no_digit_found", body)
			}
		})
		t.Run(pic.name+" through /v2", func(t *testing.T) {
			req := fmt.Sprintf(`{"inputs":[{"name":"image","shape":[2],"datatype":"BYTES","data":[%q,%q]}],
				"outputs":[{"name":"probabilities"},{"name":"accepted"},{"name":"reason"}]}`,
				base64.StdEncoding.EncodeToString(pic.data), base64.StdEncoding.EncodeToString(digit))
			resp, body := post(t, srv.URL+"/v2/models/mnist-mlp/infer", "application/json", []byte(req))
			var out struct {
				Outputs []struct {
					Name  string
					Shape []int
					Data  json.RawMessage
				}
			}
			if err := json.Unmarshal(body, &out); err != nil || resp.StatusCode != 200 || len(out.Outputs) != 3 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := compact(out.Outputs[1].Data); out.Outputs[1].Name != "accepted" || got != "[false,true]" {
				t.Errorf("accepted %s; want [false,true] (the picture, then a real digit)", got)
			}
			if got := compact(out.Outputs[2].Data); out.Outputs[2].Name != "reason" || got != `["no_digit_found",""]` {
				t.Errorf("reason %s; want [\"no_digit_found\",\"\"]", got)
			}
		})
	}

	t.Run("a batch keeps the answers of its digits", func(t *testing.T) {
		pics := issuePictures()
		out := predictBatch(t, srv.URL, "", [][]byte{digit, pics[0].data, digit})
		if !out[0].Accepted || out[0].Index != label || out[1].Reason != OutcomeNoDigit || !out[2].Accepted {
			t.Errorf("got %+v; want the digit, no digit, the digit", out)
		}
	})
	t.Run("an all-zero input row has no digit", func(t *testing.T) {
		resp, body := post(t, srv.URL+"/predict", "application/json", []byte(`{"inputs":[[`+strings.Repeat("0,", 783)+`0]]}`))
		if p := decodePredictions(t, resp, body).Predictions[0]; p.Reason != OutcomeNoDigit {
			t.Errorf("got %s; want no_digit_found", body)
		}
	})
	t.Run("min_confidence above a digit's confidence marks it low_confidence and keeps its label", func(t *testing.T) {
		resp, body := post(t, srv.URL+"/predict?min_confidence=1", "image/png", digit)
		out := decodePredictions(t, resp, body)
		if p := out.Predictions[0]; out.MinConfidence != 1 || p.Accepted || p.Reason != OutcomeLowConfidence || p.Index != label {
			t.Errorf("got %s; want label %d, accepted false, reason low_confidence, min_confidence 1", body, label)
		}
		resp, body = post(t, srv.URL+"/predict?min_confidence=0", "image/png", digit)
		if p := decodePredictions(t, resp, body).Predictions[0]; !p.Accepted || p.Reason != "" {
			t.Errorf("at min_confidence 0: %s; want accepted", body)
		}
	})
	t.Run("the default threshold is the model's", func(t *testing.T) {
		resp, body := post(t, srv.URL+"/predict", "image/png", digit)
		net, _ := model.Default()
		if out := decodePredictions(t, resp, body); out.MinConfidence != net.MinConfidence() || net.MinConfidence() <= 0 {
			t.Errorf("min_confidence %v; want the embedded model's %v, above 0", out.MinConfidence, net.MinConfidence())
		}
	})
	for _, bad := range []string{"-0.1", "1.5", "abc", "NaN", "0.5&min_confidence=0.6"} {
		t.Run("min_confidence="+bad+" is refused", func(t *testing.T) {
			resp, body := post(t, srv.URL+"/predict?min_confidence="+bad, "image/png", digit)
			if resp.StatusCode != 400 || !strings.Contains(string(body), "min_confidence") {
				t.Errorf("status %d %s; want 400 about min_confidence", resp.StatusCode, body)
			}
			req := fmt.Sprintf(`{"parameters":{"min_confidence":%q},"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":[%q]}]}`,
				bad, base64.StdEncoding.EncodeToString(digit))
			if resp, body := post(t, srv.URL+"/v2/models/mnist-mlp/infer", "application/json", []byte(req)); resp.StatusCode != 400 {
				t.Errorf("/v2 with min_confidence %q: status %d %s; want 400", bad, resp.StatusCode, body)
			}
		})
	}
	t.Run("/v2 takes min_confidence as a parameter", func(t *testing.T) {
		req := fmt.Sprintf(`{"parameters":{"min_confidence":1},"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":[%q]}],"outputs":[{"name":"reason"}]}`,
			base64.StdEncoding.EncodeToString(digit))
		resp, body := post(t, srv.URL+"/v2/models/mnist-mlp/infer", "application/json", []byte(req))
		if resp.StatusCode != 200 || !strings.Contains(compact(body), `"data":["low_confidence"]`) {
			t.Errorf("status %d %s; want reason low_confidence", resp.StatusCode, body)
		}
	})
}

// compact returns JSON without its insignificant white space.
func compact(data []byte) string {
	var b bytes.Buffer
	json.Compact(&b, data)
	return b.String()
}

func TestPredictionsAreCountedByOutcome(t *testing.T) {
	h, _, m, _ := predictOnlyServer(t)
	digit, _ := digitPNG(t, 0)
	send := func(query string, img []byte) {
		req, _ := http.NewRequest("POST", "/predict"+query, bytes.NewReader(img))
		req.Header.Set("Content-Type", "image/png")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("predict: %d %s", w.Code, w.Body)
		}
	}
	send("", digit)
	send("", digit)
	send("?min_confidence=1", digit)
	for _, pic := range issuePictures() {
		send("", pic.data)
	}
	want := `
# HELP perceptron_predictions_total Answers given, one per image, by model name and outcome: accepted, low_confidence (below the threshold), not_a_digit (unlike every class of the training data) or no_digit_found.
# TYPE perceptron_predictions_total counter
perceptron_predictions_total{model="mnist-mlp",outcome="accepted"} 2
perceptron_predictions_total{model="mnist-mlp",outcome="low_confidence"} 1
perceptron_predictions_total{model="mnist-mlp",outcome="no_digit_found"} 4
perceptron_predictions_total{model="mnist-mlp",outcome="not_a_digit"} 0
`
	if err := testutil.CollectAndCompare(m.answers, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	for i := range maxModelLabels + 5 {
		m.modelLabel(fmt.Sprintf("model-%d", i))
	}
	if got := m.modelLabel("one-too-many"); got != "other" {
		t.Errorf("model label beyond %d names: %q; want other", maxModelLabels, got)
	}
}

// TestEveryModelAnswersHonestly trains a small model on another data set with the resize preprocessing, as one
// trained on an uploaded set of photos is: it comes out calibrated with its own threshold, and since resize has no
// notion of ink, a blank picture is classified (accepted or not by confidence), never "no digit".
func TestEveryModelAnswersHonestly(t *testing.T) {
	// Two classes of 8x8 pictures: light in the top half, or in the bottom half, with noise.
	rng := rand.New(rand.NewPCG(8, 8))
	set := &dataset.Set{Name: "halves", Classes: []string{"top", "bottom"}, Rows: 8, Cols: 8}
	for i := range 400 {
		y := uint8(i % 2)
		for p := range 64 {
			v := 40 + rng.IntN(40)
			if (p < 32) == (y == 0) {
				v += 150
			}
			set.X = append(set.X, uint8(v))
		}
		set.Y = append(set.Y, y)
	}
	req := train.DefaultRequest()
	req.Dataset, req.Hidden, req.Epochs, req.ValidationSplit = "halves", []int{8}, 3, 0.1
	res, err := train.Train(context.Background(), req, set, train.Options{Input: model.Input{Width: 8, Height: 8, Preprocess: model.PreprocessResize}})
	if err != nil {
		t.Fatal(err)
	}
	net := res.Network
	net.Version = "resize-1"
	if net.Calibration == nil || net.Calibration.Examples != 40 {
		t.Fatalf("calibration %+v; want one fitted on the 40 held-out examples", net.Calibration)
	}
	srv, eng := newTestServer(t, Config{})
	eng.Swap(net)

	blank := image.NewGray(image.Rect(0, 0, 64, 64))
	for i := range blank.Pix {
		blank.Pix[i] = 255
	}
	resp, body := post(t, srv.URL+"/predict", "image/png", uploadtest.EncodePNG(blank))
	var out predictResponse
	if err := json.Unmarshal(body, &out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	p := out.Predictions[0]
	if p.Reason == OutcomeNoDigit || p.Label == "" || out.MinConfidence != net.MinConfidence() {
		t.Errorf("resize model, blank picture: %s; want a label and the model's min_confidence %v", body, net.MinConfidence())
	}
	if p.Accepted != (p.Confidence >= out.MinConfidence) {
		t.Errorf("confidence %v at min_confidence %v: accepted %v", p.Confidence, out.MinConfidence, p.Accepted)
	}
	resp, body = post(t, srv.URL+"/predict?min_confidence=1", "image/png", uploadtest.EncodePNG(blank))
	if err := json.Unmarshal(body, &out); err != nil || resp.StatusCode != 200 || out.Predictions[0].Reason != OutcomeLowConfidence {
		t.Errorf("at min_confidence 1: %s; want low_confidence", body)
	}
}
