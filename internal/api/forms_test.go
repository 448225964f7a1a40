package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

// TestUploadFormsThroughPredict sends real MNIST test digits to /predict in every form a user's upload may take
// (photos and scans, canvas drawings, 16-bit, paletted, noisy JPEG, large, off-centre, tightly cropped) and compares
// the accuracy of each form with that of the raw 28x28 digits. The digits are spread over the whole test set.
func TestUploadFormsThroughPredict(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	set := testDigits(t)
	n := 200
	switch {
	case raceEnabled:
		n = 10
	case testing.Short():
		n = 30
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-52s %7s %9s\n", "form", "digits", "accuracy")
	var rawAcc float64
	for fi, f := range uploadtest.All() {
		count := n
		if f.Large {
			count = max(2, n/10)
		}
		rng := rand.New(rand.NewPCG(uint64(fi), 5))
		stride := set.Len() / count
		right := 0
		for lo := 0; lo < count; lo += 16 {
			hi := min(lo+16, count)
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			for k := lo; k < hi; k++ {
				w, _ := mw.CreateFormFile("image", fmt.Sprintf("digit%d", k))
				w.Write(f.Make(set.Image(k*stride), rng))
			}
			mw.Close()
			resp, err := http.Post(srv.URL+"/predict", mw.FormDataContentType(), &body)
			if err != nil {
				t.Fatal(err)
			}
			var out predictResponse
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if resp.StatusCode != 200 || err != nil || len(out.Predictions) != hi-lo {
				t.Fatalf("%s: status %d, %d predictions for %d images (%v)", f.Name, resp.StatusCode, len(out.Predictions), hi-lo, err)
			}
			for k, p := range out.Predictions {
				if p.Label != "" && p.Index == int(set.Y[(lo+k)*stride]) {
					right++
				}
			}
		}
		acc := float64(right) / float64(count)
		if fi == 0 {
			rawAcc = acc
		}
		fmt.Fprintf(&table, "%-52s %7d %8.1f%%\n", f.Name, count, 100*acc)
		// A form may cost a little accuracy against raw digits, not much: the preprocessing is what this guards.
		if margin := 0.06 + 2/float64(count); acc < rawAcc-margin {
			t.Errorf("%s: accuracy %.3f through /predict, raw digits %.3f", f.Name, acc, rawAcc)
		}
	}
	t.Log(table.String())
}
