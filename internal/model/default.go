package model

import (
	_ "embed"
	"fmt"
)

// defaultModel is the MNIST model shipped in the binary, trained by `server train` with a fixed seed; README.md
// gives the command that reproduces it.
//
//go:embed default/mnist-mlp.pcpt
var defaultModel []byte

// Default decodes the embedded default model. Each call returns a fresh copy.
func Default() (*Network, error) {
	n, err := Unmarshal(defaultModel)
	if err != nil {
		return nil, fmt.Errorf("embedded default model: %w", err)
	}
	return n, nil
}
