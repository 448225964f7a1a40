// The runners: a job's life from claim to its published model.

package train

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/registry"
)

func (j *Jobs) runner() {
	poll := time.NewTicker(heartbeatEvery)
	defer poll.Stop()
	for {
		id, ok := "", false
		if j.ctx.Err() == nil {
			id, ok = j.claim()
		}
		if !ok {
			select {
			case <-j.ctx.Done():
				return
			case <-j.wake:
			case <-poll.C:
			}
			continue
		}
		// More may be waiting: let another idle runner look too.
		select {
		case j.wake <- struct{}{}:
		default:
		}
		j.mu.Lock()
		s, ok := j.jobs[id]
		if !ok || s.job.Status != StatusQueued {
			j.mu.Unlock()
			continue // cancelled while queued
		}
		ctx, cancel := context.WithCancel(j.ctx)
		s.cancel = cancel
		now := time.Now().UTC()
		s.job.Status, s.job.StartedAt = StatusRunning, &now
		j.save(&s.job)
		j.mu.Unlock()

		if j.cfg.Background {
			// A goroutine of its own, locked to a thread whose priority we lower: the thread ends with the
			// goroutine, so the lowered priority never leaks to other goroutines.
			done := make(chan struct{})
			release := addJobProc()
			go func() {
				defer close(done)
				runtime.LockOSThread()
				if !j.cfg.NormalPriority {
					lowerThreadPriority()
				}
				j.run(ctx, id)
			}()
			<-done
			release()
		} else {
			j.run(ctx, id)
		}
		cancel()
		j.mu.Lock()
		s.cancel = nil
		j.mu.Unlock()
	}
}

// run trains one job and publishes its model.
func (j *Jobs) run(ctx context.Context, id string) {
	j.mu.Lock()
	req := j.jobs[id].job.Request
	j.mu.Unlock()
	fail := func(status string, err error) {
		j.update(id, true, func(job *Job) {
			now := time.Now().UTC()
			job.Status, job.FinishedAt, job.Error = status, &now, j.relative(err).Error()
		})
	}

	trainSet, testSet, input, err := j.cfg.Data.Load(ctx, req.Dataset)
	switch {
	case err != nil && j.ctx.Err() != nil:
		fail(StatusFailed, errors.New("interrupted: the server shut down while the job was running"))
		return
	case err != nil && ctx.Err() != nil:
		fail(StatusCancelled, errors.New("cancelled"))
		return
	case err != nil:
		fail(StatusFailed, fmt.Errorf("data set %q: %w", req.Dataset, err))
		return
	}
	// The automatic fields are chosen now that the set's size is known, and the record shows the values used.
	req = req.Resolve(trainSet.Len())
	j.update(id, true, func(job *Job) {
		job.Request = req
		job.Progress.Epochs = req.Epochs
	})
	if j.cfg.Memory != nil {
		// The job holds its estimate while it trains, so predictions and imports see what training takes; it waits
		// for room (a cancel ends the wait) rather than pushing the process past its limit.
		need := req.MemoryEstimate(trainSet.Len(), trainSet.Features(), len(trainSet.Classes))
		if err := j.cfg.Memory.Reserve(ctx, need); err != nil {
			switch {
			case j.ctx.Err() != nil:
				fail(StatusFailed, errors.New("interrupted: the server shut down while the job was waiting for memory"))
			case ctx.Err() != nil:
				fail(StatusCancelled, errors.New("cancelled"))
			default:
				fail(StatusFailed, fmt.Errorf("the job needs about %d MiB, more than the memory budget (MEMORY_LIMIT): %w", need>>20, err))
			}
			return
		}
		defer j.cfg.Memory.Release(need)
	}
	res, err := Train(ctx, req, trainSet, Options{
		Name:   req.Model,
		Input:  input,
		Serial: j.cfg.Background,
		OnProgress: func(p Progress) {
			j.update(id, false, func(job *Job) {
				job.Progress = JobProgress{Epoch: p.Epoch, Epochs: p.Epochs, Fraction: p.Fraction, Loss: p.Loss,
					TrainAccuracy: p.TrainAccuracy, ValAccuracy: job.Progress.ValAccuracy, ETASeconds: p.ETA.Seconds()}
			})
		},
		OnEpoch: func(e Epoch) {
			j.update(id, true, func(job *Job) {
				job.History = append(job.History, e)
				job.Progress.ValAccuracy = e.ValAccuracy
			})
		},
	})
	// A cancel that arrives during the last mini-batches lets Train return its result; it is honoured here, before
	// anything is stored, and once more after storing, before activating.
	cancelled := func(stored string) {
		if j.ctx.Err() != nil {
			fail(StatusFailed, errors.New("interrupted: the server shut down while the job was running"))
			return
		}
		msg := "cancelled"
		if stored != "" {
			msg = fmt.Sprintf("cancelled after its model was stored as version %s, which was not activated", stored)
		}
		j.update(id, true, func(job *Job) { job.ModelVersion = stored })
		fail(StatusCancelled, errors.New(msg))
	}
	if errors.Is(err, context.Canceled) || (err == nil && ctx.Err() != nil) {
		cancelled("")
		return
	}
	if err != nil {
		fail(StatusFailed, err)
		return
	}
	net := res.Network
	if testSet != nil {
		// The test split is never trained or selected on; its accuracy is the figure to compare models by.
		if ev, err := evaluate(net, testSet, j.cfg.Background); err == nil {
			net.Metrics.TestAccuracy = ev.Accuracy
		}
	}
	if ctx.Err() != nil {
		cancelled("")
		return
	}
	commit := func() error {
		j.mu.Lock()
		err := ctx.Err()
		if err == nil {
			j.jobs[id].committed = true
		}
		j.mu.Unlock()
		if err == nil && j.committing != nil {
			j.committing(id)
		}
		return err
	}
	activate, decision, err := Publish(j.cfg.Registry, net, res.Validation, req.Activate, j.cfg.Serving(net.Name), j.cfg.Background, commit, j.cfg.GoLive)
	if errors.Is(err, context.Canceled) {
		cancelled(net.Version)
		return
	}
	if err != nil {
		fail(StatusFailed, err)
		return
	}
	j.update(id, true, func(job *Job) {
		now := time.Now().UTC()
		job.Status, job.FinishedAt = StatusSucceeded, &now
		job.ModelVersion, job.Activated, job.Decision = net.Version, activate, decision
		if res.Validation != nil && res.Validation.Len() < MinValidation {
			job.Warnings = append(job.Warnings, fmt.Sprintf("the validation set has %d examples, under %d: its accuracy, early stopping and activate=if_better judge by too few; upload more examples or raise validation_split",
				res.Validation.Len(), MinValidation))
		}
		job.Progress.Fraction = 1
		job.Progress.ETASeconds = 0
	})
}

// Publish stores a freshly trained network in the registry as a new version (its parent is the serving one) and
// applies the activate policy: "always", "never", or "if_better", which compares the new model with the serving one
// on the new model's validation split, so both are judged on the same examples, none of which the new one trained
// on. It returns whether the registry's active pointer now names the new version, and why. commit, when not nil, is
// called after the model is stored and before it is activated: an error from it (a cancellation) stops there, the
// version stored but not activated, and is returned.
func Publish(reg *registry.Registry, net *model.Network, val *dataset.Set, policy string, serving *model.Network, serial bool, commit func() error, goLive func(version string) error) (activated bool, decision string, err error) {
	if serving != nil {
		net.Parent = serving.Version
	}
	net.Version = model.NewVersion(net.Created, net.MLP.Params)
	// The version is the creation second and a digest of the weights: one that exists already holds these very
	// weights (the same request trained twice within a second), so it is stored.
	if err := reg.Put(net); err != nil && !errors.Is(err, registry.ErrExists) {
		return false, "", fmt.Errorf("storing the model: %w", err)
	}
	activate, decision := decide(policy, net, val, serving, serial)
	if commit != nil {
		if err := commit(); err != nil {
			return false, decision, err
		}
	}
	if activate {
		if goLive == nil {
			goLive = func(v string) error { _, err := reg.Activate(v); return err }
		}
		if err := goLive(net.Version); err != nil {
			return false, fmt.Sprintf("activation failed: %v", err), nil
		}
	}
	return activate, decision, nil
}

// decide applies an activate policy.
func decide(policy string, net *model.Network, val *dataset.Set, serving *model.Network, serial bool) (bool, string) {
	switch policy {
	case "always":
		return true, "activate=always"
	case "never":
		return false, "activate=never"
	}
	if val == nil {
		return false, "activate=if_better needs a validation split to compare on; not activated"
	}
	newEv, err := evaluate(net, val, serial)
	if err != nil {
		return false, "could not evaluate the new model: " + err.Error()
	}
	if serving == nil {
		return true, fmt.Sprintf("model %s had no active version; activated with %.4f validation accuracy", net.Name, newEv.Accuracy)
	}
	if serving.Input != net.Input || !slices.Equal(serving.Labels, net.Labels) {
		return false, fmt.Sprintf("not comparable with the serving model %s (different inputs or labels); not activated", serving.Version)
	}
	oldEv, err := evaluate(serving, val, serial)
	if err != nil {
		return false, "could not evaluate the serving model: " + err.Error()
	}
	if newEv.Accuracy > oldEv.Accuracy {
		return true, fmt.Sprintf("validation accuracy %.4f beats the serving model %s's %.4f on the same %d examples",
			newEv.Accuracy, serving.Version, oldEv.Accuracy, val.Len())
	}
	return false, fmt.Sprintf("validation accuracy %.4f does not beat the serving model %s's %.4f on the same %d examples; not activated",
		newEv.Accuracy, serving.Version, oldEv.Accuracy, val.Len())
}
