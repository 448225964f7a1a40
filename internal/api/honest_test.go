package api

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"mime/multipart"
	"slices"
	"strings"
	"testing"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/mnisttest"
	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

// nonDigitSeed draws the non-digit uploads of TestNonDigitsAreRejected. The default threshold, the checks of
// preprocessing and the embedded model's gate were chosen looking at other seeds only (the gate is trained on
// pictures of its own generator, internal/train), so these uploads measure them rather than fit them.
const nonDigitSeed = 20261204

// predictBatch sends uploads to /predict in multipart batches of 16 at query and returns the predictions in order.
func predictBatch(t *testing.T, url, query string, uploads [][]byte) []prediction {
	t.Helper()
	var all []prediction
	for lo := 0; lo < len(uploads); lo += 16 {
		hi := min(lo+16, len(uploads))
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for k := lo; k < hi; k++ {
			w, _ := mw.CreateFormFile("image", fmt.Sprintf("upload%d", k))
			w.Write(uploads[k])
		}
		mw.Close()
		resp, data := post(t, url+"/predict?"+query, mw.FormDataContentType(), body.Bytes())
		out := decodePredictions(t, resp, data)
		if len(out.Predictions) != hi-lo {
			t.Fatalf("%d predictions for %d images", len(out.Predictions), hi-lo)
		}
		all = append(all, out.Predictions...)
	}
	return all
}

// rejectedAt reports whether p, answered at min_confidence 0, is not accepted at threshold th: the reasons that do
// not depend on the threshold (no digit, not a digit) and the confidence below it.
func rejectedAt(p prediction, th float64) bool {
	return p.Reason == OutcomeNoDigit || p.Reason == OutcomeNotDigit || p.Confidence < th
}

// TestNonDigitsAreRejected measures both sides of the threshold with the default model: realistic uploads that are
// not a digit (blank and shaded paper, noise, natural-image-like textures, letters, shapes, two digits side by
// side; uploadtest.NonDigits) must be rejected (at least 95% of the ink-free ones, at least 80% of the others), and
// correctly classified MNIST test digits, through every upload form of
// uploadtest.All, must not be (at most 1% of them all). It prints the trade-off over thresholds, the README's
// table, and each form's accuracy, which must stay that of TestUploadFormsThroughPredict.
func TestNonDigitsAreRejected(t *testing.T) {
	measureNonDigits(t, nonDigitSeed, testDigits(t))
}

// measureNonDigits is TestNonDigitsAreRejected on the non-digits of seed and the digits of set.
func measureNonDigits(t *testing.T, seed uint64, set *dataset.Set) {
	srv, eng := newTestServer(t, Config{})
	def := eng.Model().MinConfidence()
	// The non-digits are cheap and the shares need the whole sample to be measured (a different count draws
	// different pictures), so only the race build, which cannot measure anything at its size, takes fewer.
	perFamily, perForm := 60, 200
	switch {
	case raceEnabled:
		perFamily, perForm = 6, 10
	case testing.Short():
		perForm = 30
	}

	// The two-digit family takes its digits from the training set, so no digit below is also a non-digit's half.
	train := mnisttest.Train(t)
	nds := uploadtest.NonDigits(perFamily, rand.New(rand.NewPCG(seed, 1)), train.Image, train.Len())
	uploads := make([][]byte, len(nds))
	for i, nd := range nds {
		uploads[i] = nd.Data
	}
	ndAnswers := predictBatch(t, srv.URL, "min_confidence=0", uploads)

	// Digits through every form, as TestUploadFormsThroughPredict sends them. A digit in which preprocessing finds
	// no digit is wrongly rejected whatever the model would have said, so it counts with the correctly classified.
	type formResult struct {
		name     string
		count    int
		conf     []prediction // the correctly classified ones and those without a digit found
		accuracy float64
	}
	var forms []formResult
	var correct []prediction
	for fi, f := range uploadtest.All() {
		count := perForm
		if f.Large {
			count = max(2, perForm/10)
		}
		rng := rand.New(rand.NewPCG(uint64(fi), 5))
		stride := set.Len() / count
		var digits [][]byte
		for k := range count {
			digits = append(digits, f.Make(set.Image(k*stride), rng))
		}
		fr := formResult{name: f.Name, count: count}
		right := 0
		for k, p := range predictBatch(t, srv.URL, "min_confidence=0", digits) {
			if p.Reason == OutcomeNoDigit || p.Index == int(set.Y[k*stride]) {
				fr.conf = append(fr.conf, p)
			}
			if p.Reason != OutcomeNoDigit && p.Index == int(set.Y[k*stride]) {
				right++
			}
		}
		fr.accuracy = float64(right) / float64(count)
		forms = append(forms, fr)
		correct = append(correct, fr.conf...)
	}

	share := func(ps []prediction, th float64) float64 {
		n := 0
		for _, p := range ps {
			if rejectedAt(p, th) {
				n++
			}
		}
		return float64(n) / float64(max(len(ps), 1))
	}
	var inkFree, inked []prediction
	byFamily := map[string][]prediction{}
	for i, nd := range nds {
		byFamily[nd.Family] = append(byFamily[nd.Family], ndAnswers[i])
		if nd.InkFree {
			inkFree = append(inkFree, ndAnswers[i])
		} else {
			inked = append(inked, ndAnswers[i])
		}
	}

	var table strings.Builder
	fmt.Fprintf(&table, "\n%d non-digits (%d per family), %d correctly classified digits through %d forms\n", len(nds), perFamily, len(correct), len(forms))
	fmt.Fprintf(&table, "| min_confidence | ink-free rejected | others rejected | correct digits rejected | worst form |\n|---|---|---|---|---|\n")
	thresholds := []float64{0, 0.3, 0.5, def, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99}
	slices.Sort(thresholds)
	for _, th := range slices.Compact(thresholds) {
		worst := 0.0
		for _, f := range forms {
			worst = max(worst, share(f.conf, th))
		}
		mark := ""
		if th == def {
			mark = " (default)"
		}
		fmt.Fprintf(&table, "| %.3g%s | %.1f%% | %.1f%% | %.2f%% | %.1f%% |\n", th, mark, 100*share(inkFree, th), 100*share(inked, th), 100*share(correct, th), 100*worst)
	}
	fmt.Fprintf(&table, "\nat the default %.3g, rejected by family:", def)
	for _, fam := range uploadtest.NonDigitFamilies {
		fmt.Fprintf(&table, " %s %.0f%%;", fam, 100*share(byFamily[fam], def))
	}
	fmt.Fprintf(&table, "\n\n%-62s %7s %9s %9s %9s\n", "form", "digits", "accuracy", "no digit", "rejected")
	for _, f := range forms {
		noDigit := 0
		for _, p := range f.conf {
			if p.Reason == OutcomeNoDigit {
				noDigit++
			}
		}
		fmt.Fprintf(&table, "%-62s %7d %8.1f%% %9d %8.1f%%\n", f.name, f.count, 100*f.accuracy, noDigit, 100*share(f.conf, def))
	}
	t.Log(table.String())

	if raceEnabled {
		return // a handful of pictures per family: the run checks the code, not the shares
	}
	if got := share(inkFree, def); got < 0.95 {
		t.Errorf("%.1f%% of the ink-free non-digits rejected at the default threshold %v; want at least 95%%", 100*got, def)
	}
	// The digit network alone answers letters and two-digit numbers with confident digits; the embedded model's
	// gate (model.Gate), trained on generated non-digits of other recipes, fonts and seeds, turns them away.
	if got := share(inked, def); got < 0.80 {
		t.Errorf("%.1f%% of the other non-digits rejected at the default threshold %v; want at least 80%%", 100*got, def)
	}
	// The 1% is a target for the whole sample (200 digits a form, 3,739 answered correctly); -short sends 30 a form,
	// whose share is an estimate with about a third of a point of sampling error, so it is held to 1% plus 2.5
	// standard errors of that estimate: it still fails when the gate or the threshold turns away digits wholesale.
	limit := 0.01
	if n := len(correct); perForm < 200 && n > 0 {
		limit += 2.5 * math.Sqrt(0.01*0.99/float64(n))
	}
	if got := share(correct, def); got > limit {
		t.Errorf("%.2f%% of the %d correctly classified digits rejected at the default threshold %v; want at most %.2f%%", 100*got, len(correct), def, 100*limit)
	}
}
