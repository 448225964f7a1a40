package api

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/apitest"
	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/testwait"
	"github.com/perceptron-dev/perceptron/internal/uploads"
)

// twoClassZip builds a real two-class data set: n MNIST test digits of each of two classes, as PNG files in class
// folders, zipped as a user would.
func twoClassZip(t *testing.T, a, b byte, n int) []byte {
	t.Helper()
	s := testDigits(t)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	count := map[byte]int{}
	for i := 0; i < s.Len() && (count[a] < n || count[b] < n); i++ {
		y := s.Y[i]
		if (y != a && y != b) || count[y] >= n {
			continue
		}
		count[y]++
		// Dark ink on white paper, as a scan would be.
		g := image.NewGray(image.Rect(0, 0, 28, 28))
		for j, p := range s.Image(i) {
			g.Pix[j] = 255 - p
		}
		w, err := zw.Create(fmt.Sprintf("digits/%d/%04d.png", y, i))
		if err != nil {
			t.Fatal(err)
		}
		png.Encode(w, g)
	}
	zw.Close()
	return buf.Bytes()
}

func uploadDataset(t *testing.T, url string, archive []byte, fields map[string]string) (*http.Response, []byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("archive", "set.zip")
	fw.Write(archive)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", url+"/datasets", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp, out.Bytes()
}

// TestUploadTrainAndServeATwoClassSet is the whole path of a user's own data: upload a zip of class folders, train
// on it as model "threes-eights", activate it, and classify with it by name, while the digit model keeps serving
// /predict.
func TestUploadTrainAndServeATwoClassSet(t *testing.T) {
	srv, e := newTestServer(t, Config{})
	resp, body := uploadDataset(t, srv.URL, twoClassZip(t, 3, 8, 150), map[string]string{"name": "threes and eights", "preprocess": "mnist"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	var set struct {
		ID       string
		Classes  []string
		Examples int
	}
	json.Unmarshal(body, &set)
	if strings.Join(set.Classes, ",") != "3,8" || set.Examples != 300 || resp.Header.Get("Location") != "/datasets/"+set.ID {
		t.Fatalf("upload answered %s", body)
	}
	_, body = apitest.Do(t, "GET", srv.URL+"/datasets", testToken, "")
	if !strings.Contains(string(body), set.ID) || !strings.Contains(string(body), `"mnist"`) {
		t.Errorf("GET /datasets: %s", body)
	}

	resp, body = apitest.Do(t, "POST", srv.URL+"/train", testToken,
		fmt.Sprintf(`{"dataset": %q, "model": "threes-eights", "hidden": [32], "epochs": 40, "learning_rate": 0.005, "batch_size": 32, "early_stopping_patience": 0, "validation_split": 0.2, "activate": "always"}`, set.ID))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("train: %d %s", resp.StatusCode, body)
	}
	var job struct {
		ID, Status, Error string
		ModelVersion      string `json:"model_version"`
		History           []struct {
			ValAccuracy float64 `json:"val_accuracy"`
		}
	}
	json.Unmarshal(body, &job)
	for deadline := testwait.Deadline(t); job.Status != "succeeded"; time.Sleep(20 * time.Millisecond) {
		if job.Status == "failed" || time.Now().After(deadline) {
			t.Fatalf("job %s: %s", job.Status, job.Error)
		}
		_, body = apitest.Do(t, "GET", srv.URL+"/train/"+job.ID, testToken, "")
		json.Unmarshal(body, &job)
	}
	if last := job.History[len(job.History)-1]; last.ValAccuracy < 0.9 {
		t.Errorf("validation accuracy %.3f on threes versus eights; want at least 0.9", last.ValAccuracy)
	}
	if e.Model().Name != "mnist-mlp" {
		t.Errorf("serving %s %s by default after activating threes-eights; want mnist-mlp still", e.Model().Name, e.Model().Version)
	}
	_, body = apitest.Do(t, "GET", srv.URL+"/models/threes-eights/versions", testToken, "")
	var named struct{ Active string }
	if json.Unmarshal(body, &named); named.Active != job.ModelVersion {
		t.Fatalf("GET /models/threes-eights/versions: %s; want %s active", body, job.ModelVersion)
	}
	// Classify real threes and eights it never saw (from further into the test set) through /predict.
	s := testDigits(t)
	right, total := 0, 0
	for i := s.Len() - 1; i > s.Len()-400 && total < 40; i-- {
		if s.Y[i] != 3 && s.Y[i] != 8 {
			continue
		}
		img, label := digitPNG(t, i)
		resp, body := post(t, srv.URL+"/predict?model=threes-eights", "image/png", img)
		out := decodeTwoClass(t, resp, body)
		total++
		if out == fmt.Sprint(label) {
			right++
		}
	}
	if right < total*85/100 {
		t.Errorf("%d of %d unseen threes and eights classified right; want at least 85%%", right, total)
	}
}

func decodeTwoClass(t *testing.T, resp *http.Response, body []byte) string {
	t.Helper()
	if resp.StatusCode != 200 {
		t.Fatalf("predict: %d %s", resp.StatusCode, body)
	}
	var out predictResponse
	json.Unmarshal(body, &out)
	if len(out.Predictions) != 1 || len(out.Predictions[0].Probabilities) != 2 {
		t.Fatalf("prediction %s; want two classes", body)
	}
	return out.Predictions[0].Label
}

func TestDatasetUploadErrors(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	oneClass := twoClassZip(t, 3, 3, 5)
	for _, tt := range []struct {
		name    string
		archive []byte
		fields  map[string]string
		status  int
	}{
		{"not an archive", []byte("just some text"), nil, 422},
		{"one class only", oneClass, nil, 422},
		{"unknown preprocessing", twoClassZip(t, 1, 2, 3), map[string]string{"preprocess": "magic"}, 422},
		{"two channels", twoClassZip(t, 1, 2, 3), map[string]string{"channels": "2"}, 400},
		{"colour with the mnist preprocessing", twoClassZip(t, 1, 2, 3), map[string]string{"channels": "3", "preprocess": "mnist"}, 422},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := uploadDataset(t, srv.URL, tt.archive, tt.fields)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%d %s; want %d problem+json", resp.StatusCode, body, tt.status)
			}
		})
	}
	resp, _ := apitest.Do(t, "GET", srv.URL+"/datasets/ds-0000000000000000", testToken, "")
	if resp.StatusCode != 404 {
		t.Errorf("unknown data set: %d; want 404", resp.StatusCode)
	}
	resp, _ = apitest.Do(t, "GET", srv.URL+"/datasets/..%2F..%2Fetc", testToken, "")
	if resp.StatusCode != 404 {
		t.Errorf("traversal in a data set id: %d; want 404", resp.StatusCode)
	}
	resp, _ = apitest.Do(t, "POST", srv.URL+"/datasets", "", "")
	if resp.StatusCode != 401 {
		t.Errorf("upload without a token: %d; want 401", resp.StatusCode)
	}
}

func TestMNISTInfoMatchesTheFiles(t *testing.T) {
	dir, err := dataset.FindMNIST(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	train, err := dataset.LoadMNIST(dir, dataset.Train)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, 10)
	for _, y := range train.Y {
		counts[y]++
	}
	mnistInfo := uploads.MNISTInfo()
	if fmt.Sprint(counts) != fmt.Sprint(mnistInfo.Counts) || train.Len() != mnistInfo.Examples {
		t.Errorf("MNIST has %d examples counted %v; mnistInfo says %d, %v", train.Len(), counts, mnistInfo.Examples, mnistInfo.Counts)
	}
}
