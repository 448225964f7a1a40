package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/apitest"
	"github.com/perceptron-dev/perceptron/internal/mnisttest"
	"github.com/perceptron-dev/perceptron/internal/testwait"
	"github.com/perceptron-dev/perceptron/internal/uploadtest"
)

const replicaToken = "replica-token"

// uploadSet posts archive to base's /datasets, with the data set's settings left to their defaults, and returns the
// data set's id.
func uploadSet(t *testing.T, base string, archive []byte) string {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("archive", "set.zip")
	fw.Write(archive)
	mw.Close()
	resp, data := apitest.Send(t, "POST", base+"/datasets", replicaToken, mw.FormDataContentType(), body.Bytes())
	var set struct{ ID string }
	if json.Unmarshal(data, &set); resp.StatusCode != http.StatusCreated || set.ID == "" {
		t.Fatalf("POST /datasets: %d %s", resp.StatusCode, data)
	}
	return set.ID
}

// trainVersion runs a training job through base and returns the version it stored once it has succeeded.
func trainVersion(t *testing.T, base, token, request string) string {
	t.Helper()
	code, job := apitest.JSON(t, "POST", base+"/train", token, request)
	if code != http.StatusAccepted {
		t.Fatalf("POST /train %s: %d %v", request, code, job)
	}
	id, _ := job["id"].(string)
	testwait.For(t, "training job "+id+" to succeed", func() bool {
		_, job = apitest.JSON(t, "GET", base+"/train/"+id, token, "")
		if s := job["status"]; s == "failed" || s == "cancelled" {
			t.Fatalf("job %s: %v", id, job)
		}
		return job["status"] == "succeeded"
	})
	return job["model_version"].(string)
}

// answer is what one classification came back with.
type answer struct {
	status         int
	model, version string
	label          string
	body           string
}

// classify sends one image to base for model name (at version, when not ""), through /predict or /v2.
func classify(client *http.Client, base, name, version string, img []byte, v2 bool) (answer, error) {
	var req *http.Request
	var err error
	if v2 {
		path := "/v2/models/" + name
		if version != "" {
			path += "/versions/" + version
		}
		body := fmt.Sprintf(`{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":[%q]}]}`, base64.StdEncoding.EncodeToString(img))
		req, err = http.NewRequest("POST", base+path+"/infer", bytes.NewReader([]byte(body)))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	} else {
		req, err = http.NewRequest("POST", base+"/predict?model="+name, bytes.NewReader(img))
		if err == nil {
			req.Header.Set("Content-Type", "image/png")
		}
	}
	if err != nil {
		return answer{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	a := answer{status: resp.StatusCode, body: buf.String()}
	if resp.StatusCode != http.StatusOK {
		return a, nil
	}
	if v2 {
		// The label is the class with the highest probability; the labels come from the model's metadata.
		var out struct {
			ModelName    string `json:"model_name"`
			ModelVersion string `json:"model_version"`
			Outputs      []struct {
				Name string
				Data []float64
			}
		}
		if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
			return a, err
		}
		a.model, a.version = out.ModelName, out.ModelVersion
		for _, o := range out.Outputs {
			if o.Name == "probabilities" {
				best := 0
				for i, p := range o.Data {
					if p > o.Data[best] {
						best = i
					}
				}
				a.label = fmt.Sprint(best)
			}
		}
		return a, nil
	}
	var out struct {
		Model       struct{ Name, Version string }
		Predictions []struct{ Index int }
	}
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		return a, err
	}
	a.model, a.version = out.Model.Name, out.Model.Version
	if len(out.Predictions) == 1 {
		a.label = fmt.Sprint(out.Predictions[0].Index)
	}
	return a, nil
}

// probe is one image of a model with the class index it must get.
type probe struct {
	img   []byte
	index string
}

// TestThreeReplicasServeTwoModelsThroughLiveSwaps runs three server processes on one MODEL_DIR and DATA_DIR. A
// second model, "pets" (colour pictures of cats and dogs), is uploaded and trained with the default settings through
// the HTTP API; both it and the digit model answer correctly on every replica, through /predict?model= and
// /v2/models/{name}/infer. Then, while client loops classify with both models on all three replicas through both routes, a new version of
// each model is activated, each through a different replica: every loop must see its replica move to the new
// version of its model (and never back), and no request may fail or answer wrongly.
func TestThreeReplicasServeTwoModelsThroughLiveSwaps(t *testing.T) {
	if testing.Short() {
		t.Skip("trains three models and runs three servers under load")
	}
	bin := buildServer(t)
	env := []string{"MODEL_DIR=" + t.TempDir(), "DATA_DIR=" + t.TempDir(), "ADMIN_TOKEN=" + replicaToken, "WATCH_INTERVAL=100ms"}
	var bases []string
	for range 3 {
		bases = append(bases, startProcess(t, bin, env...))
	}
	set := uploadSet(t, bases[0], uploadtest.Zip("pets", uploadtest.Pets(60, rand.New(rand.NewPCG(15, 1)))))
	petsRequest := `{"dataset": %q, "model": "pets", "seed": %d, "activate": %q}`
	pets1 := trainVersion(t, bases[0], replicaToken, fmt.Sprintf(petsRequest, set, 1, "always"))
	digits1 := servingVersion(t, bases[0])

	// Held-out pictures: pets drawn with another seed, and test digits.
	var petProbes, digitProbes []probe
	for _, p := range uploadtest.Pets(10, rand.New(rand.NewPCG(15, 2))) {
		// The classes are indexed in upload order: cat 0, dog 1.
		petProbes = append(petProbes, probe{uploadtest.EncodePNG(p.Image), fmt.Sprint(slices.Index(uploadtest.PetClasses, p.Label))})
	}
	for i := range 20 {
		img, label := mnisttest.PNG(t, i)
		digitProbes = append(digitProbes, probe{img, fmt.Sprint(label)})
	}
	client := &http.Client{}
	check := func(base, name, version string, probes []probe, v2 bool) {
		t.Helper()
		right := 0
		for _, p := range probes {
			a, err := classify(client, base, name, version, p.img, v2)
			if err != nil || a.status != http.StatusOK {
				t.Fatalf("%s model %s (v2 %v): %v %d %s", base, name, v2, err, a.status, a.body)
			}
			if a.model != name || (version != "" && a.version != version) {
				t.Fatalf("%s model %s %s (v2 %v) answered as %s %s", base, name, version, v2, a.model, a.version)
			}
			if a.label == p.index {
				right++
			}
		}
		if right < len(probes)*9/10 {
			t.Errorf("%s model %s %s (v2 %v): %d of %d held-out images right; want at least 90%%", base, name, version, v2, right, len(probes))
		}
	}
	// A replica may learn of a model's activation only at its next look at the registry.
	for _, b := range bases {
		testwait.For(t, b+" to serve pets "+pets1, func() bool {
			a, err := classify(client, b, "pets", "", petProbes[0].img, false)
			return err == nil && a.version == pets1
		})
		for _, v2 := range []bool{false, true} {
			check(b, "pets", pets1, petProbes, v2)
			check(b, "mnist-mlp", digits1, digitProbes, v2)
		}
	}

	// The next version of each, stored but not active yet.
	pets2 := trainVersion(t, bases[1], replicaToken, fmt.Sprintf(petsRequest, set, 2, "never"))
	digits2 := trainVersion(t, bases[2], replicaToken, `{"model": "mnist-mlp", "hidden": [32], "epochs": 2, "limit": 10000, "activate": "never"}`)
	check(bases[0], "pets", pets2, petProbes, true)
	check(bases[0], "mnist-mlp", digits2, digitProbes, true)
	// Under load every answer is checked, so each loop sends an image both versions of its model get right.
	agreed := func(name, old, next string, probes []probe) probe {
		for _, p := range probes {
			a, _ := classify(client, bases[0], name, old, p.img, true)
			b, _ := classify(client, bases[0], name, next, p.img, true)
			if a.label == p.index && b.label == p.index {
				return p
			}
		}
		t.Fatalf("no held-out image that %s %s and %s both get right", name, old, next)
		return probe{}
	}
	type loadModel struct {
		name, old, next string
		probe           probe
	}
	models := []loadModel{
		{"pets", pets1, pets2, agreed("pets", pets1, pets2, petProbes)},
		{"mnist-mlp", digits1, digits2, agreed("mnist-mlp", digits1, digits2, digitProbes)},
	}

	// Client loops: every replica, both models, both routes, one request at a time each.
	type loop struct {
		what      string
		requests  atomic.Int64
		converged atomic.Int64 // requests answered since the loop first saw the new version; 0 before
		failure   atomic.Pointer[string]
	}
	stop := make(chan struct{})
	var stopOnce sync.Once
	var wg sync.WaitGroup
	t.Cleanup(func() { stopOnce.Do(func() { close(stop) }); wg.Wait() })
	var loops []*loop
	for _, b := range bases {
		for _, m := range models {
			for _, v2 := range []bool{false, true} {
				l := &loop{what: fmt.Sprintf("%s model %s (v2 %v)", b, m.name, v2)}
				loops = append(loops, l)
				fail := func(format string, args ...any) {
					s := l.what + ": " + fmt.Sprintf(format, args...)
					l.failure.CompareAndSwap(nil, &s)
				}
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						a, err := classify(client, b, m.name, "", m.probe.img, v2)
						l.requests.Add(1)
						switch {
						case err != nil || a.status != http.StatusOK:
							fail("request %d: %v %d %s", l.requests.Load(), err, a.status, a.body)
							return
						case a.model != m.name || a.label != m.probe.index:
							fail("answered %s %s label %s; want label %s", a.model, a.version, a.label, m.probe.index)
							return
						case a.version == m.next:
							l.converged.Add(1)
						case a.version != m.old:
							fail("answered unknown version %s", a.version)
							return
						case l.converged.Load() > 0:
							fail("went back to %s after serving %s", a.version, m.next)
							return
						}
					}
				})
			}
		}
	}
	finish := func() {
		stopOnce.Do(func() { close(stop) })
		wg.Wait()
		for _, l := range loops {
			if f := l.failure.Load(); f != nil {
				t.Error(*f)
			}
		}
	}
	// Both swaps happen under load: every loop has been answered a few times by the old versions.
	testwait.For(t, "every client loop to be answered", func() bool {
		for _, l := range loops {
			if l.requests.Load() < 3 || l.failure.Load() != nil {
				return l.failure.Load() != nil
			}
		}
		return true
	})
	start := time.Now()
	for i, m := range models {
		if code, out := apitest.JSON(t, "POST", bases[1+i]+"/models/"+m.name+"/versions/"+m.next+"/activate", replicaToken, ""); code != http.StatusOK {
			finish()
			t.Fatalf("activating %s %s: %d %v", m.name, m.next, code, out)
		}
	}
	// Converged: every loop has been answered by its model's new version, and a few times more since.
	testwait.For(t, "every replica to serve both models' new versions", func() bool {
		for _, l := range loops {
			if l.converged.Load() < 3 && l.failure.Load() == nil {
				return false
			}
		}
		return true
	})
	elapsed := time.Since(start)
	finish()
	var total int64
	for _, l := range loops {
		total += l.requests.Load()
	}
	t.Logf("%d loops, %d requests, none failed; all replicas serve %s and %s within %v of the activations",
		len(loops), total, pets2, digits2, elapsed.Round(time.Millisecond))
}
