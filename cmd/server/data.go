package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// dataSource finds training data for jobs: MNIST, built in, loaded once and kept.
type dataSource struct {
	dataDir string

	mu         sync.Mutex
	mnistTrain *dataset.Set
	mnistTest  *dataset.Set
}

func (d *dataSource) Load(ctx context.Context, name string) (trainSet, testSet *dataset.Set, input model.Input, err error) {
	if name != "mnist" {
		return nil, nil, model.Input{}, fmt.Errorf("unknown data set %q", name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mnistTrain == nil {
		if d.mnistTrain, d.mnistTest, err = loadDataset(ctx, "mnist", d.dataDir); err != nil {
			d.mnistTrain = nil
			return nil, nil, model.Input{}, err
		}
	}
	return d.mnistTrain, d.mnistTest, model.Input{Width: 28, Height: 28, Preprocess: model.PreprocessMNIST}, nil
}
