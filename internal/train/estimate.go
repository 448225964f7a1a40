package train

// Bytes per parameter a job holds, by optimizer: the float32 weights, their gradient and the best weights kept for
// early stopping (12), plus the optimizer's state. SGD keeps a float32 velocity; Adam two float32 moments; gonum's
// L-BFGS works in float64 and keeps the parameters, the gradient and their last values, a search direction and 15
// pairs of correction vectors (about 2x15x8 bytes), about 400 bytes a parameter in all.
var bytesPerParam = map[string]int64{"sgd": 16, "adam": 20, "lbfgs": 400}

// activationCopies is how many float32 values per unit and example the forward and backward passes keep: the
// pre-activation, the activation and the error signal.
const activationCopies = 3

// MemoryEstimate is the memory, in bytes, that a job of r needs at most on a data set of the given number of
// examples, with inputs features and classes classes: its parameters and the optimizer's state, the activations of
// one batch (L-BFGS evaluates the whole set in chunks of 2048), and the examples themselves as float32 rows when
// augmented. It is made when the request is validated, so a job that cannot fit is refused then, not after a 202.
func (r Request) MemoryEstimate(examples, inputs, classes int) int64 {
	r = r.Resolve(examples)
	if r.Limit > 0 {
		examples = min(examples, r.Limit)
	}
	widths := append(append([]int{inputs}, r.Hidden...), classes)
	var params, units int64
	for i := 1; i < len(widths); i++ {
		params += int64(widths[i-1])*int64(widths[i]) + int64(widths[i])
		units += int64(widths[i])
	}
	per, ok := bytesPerParam[r.Optimizer]
	if !ok {
		per = bytesPerParam["lbfgs"]
	}
	batch := int64(r.BatchSize)
	if r.Optimizer == "lbfgs" {
		batch = lbfgsChunk
	}
	batch = min(batch, int64(max(examples, 1)))
	acts := batch * (units + int64(inputs)) * 4 * activationCopies
	data := int64(examples) * int64(inputs) // the set as bytes, split into training and validation copies
	return params*per + acts + 2*data
}
