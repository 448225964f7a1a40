package api

import (
	"context"
	"fmt"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// PrepareImages turns encoded images (PNG, JPEG, ...) into the rows of model input in, through the same decoding,
// limits and decode budget as POST /predict. It serves the protocol's BYTES tensors on every transport: the v2 REST
// routes and the gRPC service. Its errors are *Error; their Kind says whose fault they are.
func (s *Server) PrepareImages(ctx context.Context, items [][]byte, in model.Input) ([]float32, int, error) {
	x, n, _, err := s.prepareImages(ctx, items, in)
	return x, n, err
}

// prepareImages is PrepareImages that also says which images had no digit in them (nil when all had one).
func (s *Server) prepareImages(ctx context.Context, items [][]byte, in model.Input) ([]float32, int, []bool, error) {
	if len(items) > s.cfg.MaxImages {
		return nil, 0, nil, &Error{Kind: KindTooLarge, Detail: fmt.Sprintf("%d images; at most %d per request", len(items), s.cfg.MaxImages)}
	}
	b := &batchInput{size: in.Size()}
	for i, data := range items {
		if err := s.addImage(ctx, b, data, in, func() string { return fmt.Sprintf("item %d", i) }); err != nil {
			return nil, 0, nil, err
		}
	}
	return b.x, b.n, b.noDigit, nil
}
