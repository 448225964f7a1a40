package uploads

import (
	"context"
	"sync"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// Catalog finds training data by name: "mnist", built in (fetched and verified by package dataset, loaded once and
// kept), or the id of a set in the store. It implements train.DataSource.
type Catalog struct {
	Store   *Store // nil: MNIST only
	DataDir string // where MNIST is kept (DATA_DIR)

	mu                    sync.Mutex
	mnistTrain, mnistTest *dataset.Set
}

// MNISTInput is how MNIST's images are prepared.
var MNISTInput = model.Input{Width: dataset.MNISTSide, Height: dataset.MNISTSide, Preprocess: model.PreprocessMNIST}

// MNISTInfo describes the built-in data set in the same shape as uploaded ones: its counts are those of the training
// part, and its created time that of the module version the files come from.
func MNISTInfo() Info {
	return Info{
		ID: dataset.MNISTName, Name: "MNIST handwritten digits (built in)", Classes: dataset.MNISTClasses(),
		Counts: dataset.MNISTTrainCounts(), Examples: dataset.MNISTTrainExamples,
		Width: MNISTInput.Width, Height: MNISTInput.Height, Preprocess: MNISTInput.Preprocess, Channels: 1,
		Source: "builtin", Created: dataset.MNISTCreated,
	}
}

// Load returns the training examples of a set, its test examples when it has them (MNIST), and its input.
func (c *Catalog) Load(ctx context.Context, name string) (trainSet, testSet *dataset.Set, input model.Input, err error) {
	if name == dataset.MNISTName {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.mnistTrain == nil {
			dir, err := dataset.FindMNIST(ctx, c.DataDir)
			if err != nil {
				return nil, nil, model.Input{}, err
			}
			tr, err := dataset.LoadMNIST(dir, dataset.Train)
			if err != nil {
				return nil, nil, model.Input{}, err
			}
			te, err := dataset.LoadMNIST(dir, dataset.Test)
			if err != nil {
				return nil, nil, model.Input{}, err
			}
			c.mnistTrain, c.mnistTest = tr, te
		}
		return c.mnistTrain, c.mnistTest, MNISTInput, nil
	}
	if c.Store == nil {
		return nil, nil, model.Input{}, &Error{Kind: ErrNotFound, Msg: "no data set " + name}
	}
	info, err := c.Store.Get(name)
	if err != nil {
		return nil, nil, model.Input{}, err
	}
	set, err := c.Store.Load(name)
	if err != nil {
		return nil, nil, model.Input{}, err
	}
	return set, nil, info.Input(), nil
}
