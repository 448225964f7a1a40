package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/perceptron-dev/perceptron/internal/imageprep"
	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/onnx"
	"github.com/perceptron-dev/perceptron/internal/registry"
	"github.com/perceptron-dev/perceptron/internal/train"
	"github.com/perceptron-dev/perceptron/internal/uploads"
)

// domainErrors is the one table from the errors of the packages under the API to what a client is told, whatever
// the route and whichever shape the answer takes (problem+json, or the Open Inference Protocol's {"error"}): the
// kind (and so the status), the detail, a Retry-After in seconds, and the rejections_total reason when the kind
// alone does not say what happened. A detail containing %v is formatted with the error's own message, which those
// packages keep safe to show (no absolute paths). The first row whose error matches wins.
var domainErrors = []struct {
	err    error
	kind   Kind
	detail string
	retry  int
	reason string
}{
	{inference.ErrOverloaded, KindUnavailable, "overloaded: the inference queue is full", 1, RejectOverloaded},
	{inference.ErrClosed, KindUnavailable, "shutting down", 1, RejectShuttingDown},
	{inference.ErrUnknownModel, KindNotFound, "%v", 0, ""},
	{inference.ErrBusy, KindUnavailable, "%v", 1, RejectOverloaded},
	{inference.ErrInput, KindUnavailable, "the model changed while the request was prepared; retry", 1, RejectModelChanged},
	{membudget.ErrBusy, KindUnavailable, "overloaded: not enough memory free; retry", 1, RejectMemory},
	{membudget.ErrNeverFits, KindTooLarge, "%v (MEMORY_LIMIT)", 0, ""},
	{imageprep.ErrUndecodable, KindUnprocessable, "%v", 0, RejectUndecodable},
	{imageprep.ErrUnsupported, KindUnprocessable, "%v", 0, RejectUndecodable},

	{train.ErrInvalid, KindUnprocessable, "%v", 0, ""},
	{train.ErrJobNotFound, KindNotFound, "no such training job", 0, ""},
	{train.ErrQueueFull, KindUnavailable, "too many training jobs waiting; retry later", 30, RejectTrainingQueueFull},
	{train.ErrJobFinished, KindConflict, "the job has already finished", 0, ""},
	{train.ErrTooLate, KindConflict, "too late to cancel: the job's model is already stored and the job is finishing as requested (activating it, if its activate policy said so)", 0, ""},

	// An invalid version name cannot exist either; saying "not found" for both tells an attacker nothing.
	{registry.ErrNotFound, KindNotFound, "no such model version", 0, ""},
	{registry.ErrInvalid, KindNotFound, "no such model version", 0, ""},
	{registry.ErrUnloadable, KindUnprocessable, "%v; the served model is unchanged", 0, ""},
	{registry.ErrExists, KindConflict, "this version exists already: the same weights were stored in the same second", 0, ""},
	{registry.ErrConflict, KindConflict, "%v", 0, ""},
	{registry.ErrUnavailable, KindUnavailable, "the model registry's store is unavailable; retry", 5, ""},

	{onnx.ErrTooLarge, KindTooLarge, "%v", 0, ""},
	{onnx.ErrMalformed, KindUnprocessable, "%v", 0, ""},
	{onnx.ErrUnsupported, KindUnprocessable, "%v", 0, ""},

	{uploads.ErrNotFound, KindNotFound, "no such data set", 0, ""},
	{uploads.ErrTooLarge, KindTooLarge, "%v", 0, ""},
	{uploads.ErrInvalid, KindUnprocessable, "%v", 0, ""},

	{context.DeadlineExceeded, KindTimeout, "the request took too long", 0, ""},
	{context.Canceled, KindUnavailable, "the request was cancelled", 0, RejectCancelled},
}

// asError gives err a kind: an *Error keeps its own, a domain error takes its row of domainErrors, anything else
// is internal.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	for _, d := range domainErrors {
		if errors.Is(err, d.err) {
			return &Error{Kind: d.kind, Detail: domainDetail(d.detail, err), RetryAfter: d.retry, Reason: d.reason, Err: err}
		}
	}
	return &Error{Kind: KindInternal, Detail: "internal error", Err: err}
}

// domainDetail fills a detail template with the error's client-safe message: an uploads error's own detail, else
// its message.
func domainDetail(template string, err error) string {
	msg := err.Error()
	var ue *uploads.Error
	if errors.As(err, &ue) {
		msg = ue.Detail()
	}
	if template == "%v" {
		return msg
	}
	return fmt.Sprintf(template, msg)
}
