package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/apitest"
	"github.com/perceptron-dev/perceptron/internal/testwait"
	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

// petsJob is what the pets walk-through reads of a training job's record.
type petsJob struct {
	ID, Status, Error string
	ModelVersion      string `json:"model_version"`
	Activated         bool
	Decision          string
	Request           struct {
		BatchSize       int     `json:"batch_size"`
		Epochs          int     `json:"epochs"`
		ValidationSplit float64 `json:"validation_split"`
		Patience        int     `json:"early_stopping_patience"`
	}
}

// trainWithDefaults uploads pets (channels as given, "" for automatic), trains model name on it with POST /train
// and nothing but the data set and the name, and waits for the job.
func trainWithDefaults(t *testing.T, url string, pets []uploadtest.LabelledImage, name, channels string) (set map[string]any, job petsJob) {
	t.Helper()
	fields := map[string]string{"name": name}
	if channels != "" {
		fields["channels"] = channels
	}
	resp, body := uploadDataset(t, url, uploadtest.Zip("pets", pets), fields)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	json.Unmarshal(body, &set)
	resp, body = apitest.Do(t, "POST", url+"/train", testToken, fmt.Sprintf(`{"dataset": %q, "model": %q}`, set["id"], name))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("train: %d %s", resp.StatusCode, body)
	}
	json.Unmarshal(body, &job)
	for deadline := testwait.Deadline(t); job.Status != "succeeded"; time.Sleep(50 * time.Millisecond) {
		if job.Status == "failed" || job.Status == "cancelled" || time.Now().After(deadline) {
			t.Fatalf("job %s: %s", job.Status, job.Error)
		}
		_, body = apitest.Do(t, "GET", url+"/train/"+job.ID, testToken, "")
		json.Unmarshal(body, &job)
	}
	return set, job
}

// petsAccuracy classifies held-out pictures with model name through POST /predict?model=, one picture a request.
func petsAccuracy(t *testing.T, url, name string, pets []uploadtest.LabelledImage) float64 {
	t.Helper()
	right := 0
	for _, p := range pets {
		resp, body := post(t, url+"/predict?model="+name, "image/png", uploadtest.EncodePNG(p.Image))
		if decodeTwoClass(t, resp, body) == p.Label {
			right++
		}
	}
	return float64(right) / float64(len(pets))
}

// petsV2Accuracy classifies held-out pictures with model name through the protocol's /v2/models/{name}/infer, eight
// encoded pictures a request.
func petsV2Accuracy(t *testing.T, url, name string, pets []uploadtest.LabelledImage) float64 {
	t.Helper()
	right := 0
	for start := 0; start < len(pets); start += 8 {
		batch := pets[start:min(start+8, len(pets))]
		imgs := make([]string, len(batch))
		for i, p := range batch {
			imgs[i] = base64.StdEncoding.EncodeToString(p.Data)
		}
		data, _ := json.Marshal(imgs)
		resp, body := apitest.Do(t, "POST", url+"/v2/models/"+name+"/infer", "",
			fmt.Sprintf(`{"inputs":[{"name":"image","shape":[%d],"datatype":"BYTES","data":%s}]}`, len(batch), data))
		var out struct {
			ModelName string `json:"model_name"`
			Outputs   []struct {
				Shape []int
				Data  []float64
			}
		}
		if err := json.Unmarshal(body, &out); err != nil || resp.StatusCode != 200 || out.ModelName != name ||
			len(out.Outputs) != 1 || len(out.Outputs[0].Data) != 2*len(batch) {
			t.Fatalf("v2 infer: %d %s", resp.StatusCode, body)
		}
		for i, p := range batch {
			// Classes are in upload order, cat then dog.
			dog := out.Outputs[0].Data[2*i+1] > out.Outputs[0].Data[2*i]
			if dog == (p.Label == "dog") {
				right++
			}
		}
	}
	return float64(right) / float64(len(pets))
}

// TestPetsWalkThrough is the README's "your own data" walk-through: upload 120 colour pictures of cats and dogs,
// train model pets with every training setting left to its default, and classify pictures it never saw, drawn with
// another seed, through /predict and /v2, while the digit model still reads a digit. A gray model trained the same
// way on the same pictures does clearly worse (checked without -short), so the colour is what the test is about.
func TestPetsWalkThrough(t *testing.T) {
	if testing.Short() && raceEnabled {
		t.Skip("trains for 100 epochs, slow under the race detector")
	}
	srv, _ := newTestServer(t, Config{})
	trainPets := uploadtest.Pets(60, rand.New(rand.NewPCG(15, 1)))
	heldOut := uploadtest.Pets(30, rand.New(rand.NewPCG(15, 2)))

	set, job := trainWithDefaults(t, srv.URL, trainPets, "pets", "")
	if set["channels"] != 3.0 || set["examples"] != 120.0 {
		t.Fatalf("the set was stored with %v channels and %v examples; want 3 and 120", set["channels"], set["examples"])
	}
	// The record shows the values the automatic rule chose for 120 examples.
	if r := job.Request; r.BatchSize != 16 || r.Epochs != 100 || r.ValidationSplit != 0.2 || r.Patience != 0 {
		t.Errorf("resolved request %+v; want batch 16, 100 epochs, split 0.2, no early stopping", r)
	}
	if !job.Activated {
		t.Fatalf("the first pets version was not activated: %s", job.Decision)
	}

	colour := petsAccuracy(t, srv.URL, "pets", heldOut)
	v2 := petsV2Accuracy(t, srv.URL, "pets", heldOut)
	t.Logf("pets on %d held-out pictures: %.1f%% through /predict, %.1f%% through /v2", len(heldOut), 100*colour, 100*v2)
	if colour < 0.9 || v2 < 0.9 {
		t.Errorf("pets classified %.1f%% (/predict) and %.1f%% (/v2) of held-out pictures right; want at least 90%%", 100*colour, 100*v2)
	}

	// A gray-sized row is refused with the size the colour model takes, on both routes.
	gray := "[" + strings.TrimSuffix(strings.Repeat("0,", 784), ",") + "]"
	resp, body := apitest.Do(t, "POST", srv.URL+"/predict?model=pets", "", `{"inputs": [`+gray+`]}`)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "takes 2352") {
		t.Errorf("784 values for pets: %d %s; want 422 saying it takes 2352", resp.StatusCode, body)
	}
	resp, body = apitest.Do(t, "POST", srv.URL+"/v2/models/pets/infer", "",
		`{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":`+gray+`}]}`)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "2352") {
		t.Errorf("784 values for pets on /v2: %d %s; want 400 naming 2352", resp.StatusCode, body)
	}

	// The digit model answers beside it, by default and by name.
	img, label := digitPNG(t, 0)
	for _, route := range []string{"/predict", "/predict?model=mnist-mlp"} {
		resp, body := post(t, srv.URL+route, "image/png", img)
		var out predictResponse
		json.Unmarshal(body, &out)
		if resp.StatusCode != 200 || len(out.Predictions) != 1 || out.Predictions[0].Label != fmt.Sprint(label) {
			t.Errorf("%s of a %d: %d %s", route, label, resp.StatusCode, body)
		}
	}

	if testing.Short() {
		return // the gray comparison trains a second model; it runs without -short
	}
	_, grayJob := trainWithDefaults(t, srv.URL, trainPets, "pets-gray", "1")
	if !grayJob.Activated {
		t.Fatalf("pets-gray was not activated: %s", grayJob.Decision)
	}
	grayAcc := petsAccuracy(t, srv.URL, "pets-gray", heldOut)
	t.Logf("the same pictures in gray: %.1f%%", 100*grayAcc)
	if grayAcc > colour-0.1 {
		t.Errorf("a gray model reached %.1f%%, the colour one %.1f%%; want the gray one clearly worse", 100*grayAcc, 100*colour)
	}
}
