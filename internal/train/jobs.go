package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/perceptron-dev/perceptron/internal/atomicfile"
	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/randid"
	"github.com/perceptron-dev/perceptron/internal/registry"
)

// Job statuses.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// Job is a training job as clients see it (GET /train/{id}).
type Job struct {
	ID           string      `json:"id"`
	Status       string      `json:"status"`
	Replica      string      `json:"replica,omitempty"` // the replica that runs the job; empty while it is queued
	Request      Request     `json:"request"`
	CreatedAt    time.Time   `json:"created_at"`
	StartedAt    *time.Time  `json:"started_at"`
	FinishedAt   *time.Time  `json:"finished_at"`
	Progress     JobProgress `json:"progress"`
	History      []Epoch     `json:"history"`
	ModelVersion string      `json:"model_version"`
	Activated    bool        `json:"activated"`
	// Decision says why the model was or was not activated.
	Decision string `json:"decision,omitempty"`
	// Warnings name what makes the result less trustworthy than it looks (a validation set too small to judge by).
	Warnings []string `json:"warnings,omitempty"`
	Error    string   `json:"error"`
}

// MinValidation is the validation set size under which a job's record warns that its validation accuracy, and so
// early stopping and activate=if_better, judge by too few examples (one example moves the accuracy by over 2%).
const MinValidation = 50

// JobProgress is the latest progress of a running job.
type JobProgress struct {
	Epoch         int     `json:"epoch"`
	Epochs        int     `json:"epochs"`
	Fraction      float64 `json:"fraction"`
	Loss          float64 `json:"loss"`
	TrainAccuracy float64 `json:"train_accuracy"`
	ValAccuracy   float64 `json:"val_accuracy"`
	ETASeconds    float64 `json:"eta_seconds"`
}

// Finished reports whether the job has reached a final status.
func (j *Job) Finished() bool {
	return j.Status == StatusSucceeded || j.Status == StatusFailed || j.Status == StatusCancelled
}

// DataSource finds training data by the name a request gives.
type DataSource interface {
	// Load returns the training examples of a data set, its test examples if it has any (else nil), and the input
	// description (size, preprocessing) of its images.
	Load(ctx context.Context, name string) (train, test *dataset.Set, input model.Input, err error)
}

// Errors of the jobs API.
var (
	ErrJobNotFound = errors.New("no such training job")
	ErrQueueFull   = errors.New("too many training jobs waiting")
	ErrJobFinished = errors.New("the job has already finished")
	// ErrTooLate means the job had passed the point of no return (its model stored and being activated, or
	// the job finishing without activating) when the cancel came: it will end as if never cancelled.
	ErrTooLate = errors.New("too late to cancel: the job's model is already stored and the job is finishing")
)

// JobsConfig sets up the job runner. Zero values pick the defaults noted on each field.
type JobsConfig struct {
	// Dir is where job records persist (MODEL_DIR/jobs), shared by every replica; required. Queued jobs wait in
	// Dir/_queue, owned by no replica; a replica claims one by renaming its record into its own subfolder (named
	// by Replica), which only one replica can do, and then runs it there. It reads the others' subfolders to show
	// their jobs.
	Dir string
	// Replica names this process among the replicas sharing Dir. Queued jobs do not depend on it (any replica runs
	// them); a running job is shown under it, and a process restarted under the same name marks the job it was
	// running as interrupted at once instead of after staleAfter. Empty means the host name.
	Replica     string
	Registry    *registry.Registry
	Data        DataSource
	Concurrency int // jobs running at once; 0 means 1
	QueueSize   int // jobs waiting at most, across the replicas sharing Dir; 0 means 32
	// Background runs each job on one thread at the lowest priority (SCHED_IDLE, else nice 19), serial, with a Go P
	// of its own (addJobProc), so training never takes more than one core and yields it to serving whenever serving
	// needs it. The zero value uses every core at normal priority.
	Background bool
	// Serving returns the active network of model name (nil when it has none), for activate=if_better, which
	// compares a new model only with the active version of its own name.
	Serving func(name string) *model.Network
	// GoLive makes a stored version the active one and the one that serves (the composition root's one way a
	// model goes live); nil only writes the registry's active pointer.
	GoLive func(version string) error
	// Memory is the process's memory budget: a running job holds its estimate (Request.MemoryEstimate) from it, and
	// waits for room before it trains. Nil means unlimited.
	Memory *membudget.Budget
	// Observe, when set, is called after every change of a job (for metrics and logs).
	Observe func(Job)
	// SaveFailed, when set, is told when a job's record cannot be written (a full or read-only MODEL_DIR): the
	// job goes on in memory, but its latest state would not survive a restart. It is called with the jobs' lock
	// held, so it must not call back into Jobs.
	SaveFailed func(Job, error)
}

// Jobs queues and runs training jobs, persisting each job's record so it survives a restart.
type Jobs struct {
	cfg JobsConfig
	// wake tells an idle runner that a job was queued here; jobs queued by other replicas are found by polling.
	wake chan struct{}
	mu   sync.Mutex
	jobs map[string]*jobState // this replica's jobs: claimed ones, and queued ones that could not be written to disk
	// local holds, oldest first, jobs queued while the shared queue could not be written (a full or read-only
	// MODEL_DIR): this replica runs them, so they fail with a clear error instead of being refused.
	local  []string
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
	// committing, when set (by tests), is called just after a job passes its point of no return.
	committing func(id string)
}

type jobState struct {
	job    Job
	cancel context.CancelFunc // set while running
	// committed is set once the job has passed the last cancellation check: from then on it ends as it would
	// have without a cancel, so Cancel answers ErrTooLate instead of promising what will not happen.
	committed bool
}

var validJobID = regexp.MustCompile(`^[0-9a-f]{16}$`)

// queueDir is the subfolder of Dir where queued jobs wait. Its name cannot be a replica's (validReplica).
const queueDir = "_queue"

// NewJobs loads the persisted job records: a job that was running when the previous process stopped is marked
// failed, saying so; jobs this replica had claimed but not started go back to the shared queue, to run once Start
// starts the runners (here or on another replica).
func NewJobs(cfg JobsConfig) (*Jobs, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 32
	}
	if cfg.Replica == "" {
		cfg.Replica, _ = os.Hostname()
	}
	if !validReplica.MatchString(cfg.Replica) {
		return nil, fmt.Errorf("jobs: replica name %q must be letters, digits, dots, dashes or underscores", cfg.Replica)
	}
	for _, d := range []string{cfg.Replica, queueDir} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &Jobs{cfg: cfg, jobs: map[string]*jobState{}, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1)}
	des, err := os.ReadDir(j.own())
	if err != nil {
		return nil, err
	}
	for _, de := range des {
		data, err := os.ReadFile(filepath.Join(j.own(), de.Name()))
		if err != nil || filepath.Ext(de.Name()) != ".json" {
			continue
		}
		var job Job
		if json.Unmarshal(data, &job) != nil || !validJobID.MatchString(job.ID) {
			continue
		}
		switch job.Status {
		case StatusRunning:
			now := time.Now().UTC()
			job.Status, job.FinishedAt = StatusFailed, &now
			job.Error = "interrupted: the server stopped while the job was running"
			j.save(&job)
		case StatusQueued:
			// Claimed but not started (or queued by a version that kept queues per replica): back to the queue.
			if os.Rename(filepath.Join(j.own(), de.Name()), filepath.Join(j.cfg.Dir, queueDir, job.ID+".json")) == nil {
				continue
			}
		}
		j.jobs[job.ID] = &jobState{job: job}
	}
	j.adoptOrphans()
	return j, nil
}

// Start starts the runners and the heartbeat. It is separate from NewJobs so that whatever JobsConfig's callbacks
// reach is fully built before the first job, queued before a restart, can call them.
func (j *Jobs) Start() {
	for range j.cfg.Concurrency {
		j.wg.Go(j.runner)
	}
	j.wg.Go(j.heartbeat)
}

var validReplica = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._-]{0,99}$`)

// own is this replica's folder of job records.
func (j *Jobs) own() string { return filepath.Join(j.cfg.Dir, j.cfg.Replica) }

// Heartbeats: a replica touches the records of its unfinished jobs every heartbeatEvery, so the others can tell a
// job whose replica is gone (no touch for staleAfter) from one that is queued or running.
const (
	heartbeatEvery = 2 * time.Second
	staleAfter     = time.Minute
)

// heartbeat keeps this replica's unfinished records fresh and acts on cancellations other replicas asked for.
func (j *Jobs) heartbeat() {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	lastAdopt := time.Now()
	for {
		select {
		case <-j.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if now.Sub(lastAdopt) > staleAfter/2 {
			j.adoptOrphans()
			lastAdopt = now
		}
		j.mu.Lock()
		var cancels []string
		for id, s := range j.jobs {
			if s.job.Finished() {
				continue
			}
			os.Chtimes(filepath.Join(j.own(), id+".json"), now, now)
			if _, err := os.Stat(filepath.Join(j.own(), id+".cancel")); err == nil {
				cancels = append(cancels, id)
			}
		}
		j.mu.Unlock()
		for _, id := range cancels {
			j.Cancel(id)
			os.Remove(filepath.Join(j.own(), id+".cancel"))
		}
	}
}

// adoptOrphans puts back in the queue the queued records left in the folder of a replica that is gone (no
// heartbeat for staleAfter): a pod that claimed a job and died before starting it, or one of a version that kept
// queues per replica. The rename is atomic, so when several replicas try, one moves the record and the others find
// it gone; the queue then hands it to exactly one runner.
func (j *Jobs) adoptOrphans() {
	des, err := os.ReadDir(j.cfg.Dir)
	if err != nil {
		return
	}
	for _, de := range des {
		if !de.IsDir() || de.Name() == j.cfg.Replica || !validReplica.MatchString(de.Name()) {
			continue
		}
		paths, _ := filepath.Glob(filepath.Join(j.cfg.Dir, de.Name(), "*.json"))
		for _, p := range paths {
			fi, err := os.Stat(p)
			if err != nil || time.Since(fi.ModTime()) <= staleAfter {
				continue
			}
			job, err := readJob(p)
			if err != nil || job.Status != StatusQueued || filepath.Base(p) != job.ID+".json" {
				continue
			}
			os.Rename(p, filepath.Join(j.cfg.Dir, queueDir, job.ID+".json"))
		}
	}
}

// readJob reads one job record.
func readJob(path string) (Job, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Job{}, err
	}
	var job Job
	if err := json.Unmarshal(data, &job); err != nil {
		return Job{}, err
	}
	if !validJobID.MatchString(job.ID) {
		return Job{}, fmt.Errorf("%s: not a job record", filepath.Base(path))
	}
	return job, nil
}

// queued reads the shared queue's records, oldest first; with id set, only that job's.
func (j *Jobs) queued(id string) []Job {
	pattern := "*.json"
	if id != "" {
		pattern = id + ".json"
	}
	paths, _ := filepath.Glob(filepath.Join(j.cfg.Dir, queueDir, pattern))
	var out []Job
	for _, p := range paths {
		// Glob's * does not match a leading dot: temporary files of writes in progress are left out.
		if job, err := readJob(p); err == nil && filepath.Base(p) == job.ID+".json" {
			job.Replica = ""
			out = append(out, job)
		}
	}
	slices.SortFunc(out, func(a, b Job) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out
}

// claim takes the oldest queued job for this replica: one queued here while the shared queue was unwritable, else
// one from the shared queue, renamed into this replica's folder. It returns false when there is none.
func (j *Jobs) claim() (string, bool) {
	j.mu.Lock()
	for len(j.local) > 0 {
		id := j.local[0]
		j.local = j.local[1:]
		if s := j.jobs[id]; s != nil && s.job.Status == StatusQueued {
			j.mu.Unlock()
			return id, true
		}
	}
	j.mu.Unlock()
	for _, job := range j.queued("") {
		// Under the lock, so that Get, which looks in the queue and then in j.jobs, finds the job in one of them.
		j.mu.Lock()
		err := os.Rename(filepath.Join(j.cfg.Dir, queueDir, job.ID+".json"), filepath.Join(j.own(), job.ID+".json"))
		if err == nil {
			job.Replica = j.cfg.Replica
			j.jobs[job.ID] = &jobState{job: job}
		}
		j.mu.Unlock()
		if err == nil {
			return job.ID, true
		}
		// Another replica claimed it, or it was cancelled.
	}
	return "", false
}

// foreign reads the record of a job another replica runs, or of all of them when id is empty. A record whose
// replica stopped touching it is reported failed, so no job is shown running for ever.
func (j *Jobs) foreign(id string) []Job {
	des, err := os.ReadDir(j.cfg.Dir)
	if err != nil {
		return nil
	}
	var out []Job
	for _, de := range des {
		if !de.IsDir() || de.Name() == j.cfg.Replica || !validReplica.MatchString(de.Name()) {
			continue
		}
		pattern := "*.json"
		if id != "" {
			pattern = id + ".json"
		}
		paths, _ := filepath.Glob(filepath.Join(j.cfg.Dir, de.Name(), pattern))
		for _, p := range paths {
			data, err := os.ReadFile(p)
			fi, serr := os.Stat(p)
			var job Job
			if err != nil || serr != nil || json.Unmarshal(data, &job) != nil || !validJobID.MatchString(job.ID) {
				continue
			}
			job.Replica = de.Name()
			// A stale queued record is not lost: adoptOrphans puts it back in the queue.
			if job.Status == StatusRunning && time.Since(fi.ModTime()) > staleAfter {
				t := fi.ModTime().UTC()
				job.Status, job.FinishedAt = StatusFailed, &t
				job.Error = fmt.Sprintf("lost: replica %s stopped updating the job at %s", de.Name(), t.Format(time.RFC3339))
			}
			out = append(out, job)
		}
	}
	return out
}

// Close stops the runners: a running job is recorded as failed, interrupted by the shutdown; queued jobs stay in
// the shared queue, for another replica or the next start to run.
func (j *Jobs) Close() {
	j.cancel()
	j.wg.Wait()
}

func newJobID() string {
	return randid.Hex(8)
}

// Submit validates and queues a request.
func (j *Jobs) Submit(req Request) (Job, error) {
	if err := req.Validate(); err != nil {
		return Job{}, err
	}
	job := Job{ID: newJobID(), Status: StatusQueued, Request: req, CreatedAt: time.Now().UTC(),
		Progress: JobProgress{Epochs: req.Epochs}, History: []Epoch{}}
	waiting, _ := filepath.Glob(filepath.Join(j.cfg.Dir, queueDir, "*.json"))
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(waiting)+len(j.local) >= j.cfg.QueueSize {
		return Job{}, ErrQueueFull
	}
	data, err := json.MarshalIndent(job, "", "  ")
	if err == nil {
		err = atomicfile.Write(filepath.Join(j.cfg.Dir, queueDir, job.ID+".json"), data)
	}
	if err != nil {
		// The job stays with this replica, in memory, and fails when it cannot store its model either.
		if j.cfg.SaveFailed != nil {
			j.cfg.SaveFailed(cloneJob(&job), j.relative(err))
		}
		job.Replica = j.cfg.Replica
		j.jobs[job.ID] = &jobState{job: job}
		j.local = append(j.local, job.ID)
	}
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return job, nil
}

// Get returns one job, this replica's or another's.
func (j *Jobs) Get(id string) (Job, error) {
	// The queue is read first: a job leaves it only for j.jobs (under j.mu) or another replica's folder.
	if validJobID.MatchString(id) {
		if q := j.queued(id); len(q) > 0 {
			return q[0], nil
		}
	}
	j.mu.Lock()
	s, ok := j.jobs[id]
	var job Job
	if ok {
		job = cloneJob(&s.job)
	}
	j.mu.Unlock()
	if ok {
		return job, nil
	}
	if validJobID.MatchString(id) {
		if others := j.foreign(id); len(others) > 0 {
			return others[0], nil
		}
	}
	return Job{}, fmt.Errorf("%w: %q", ErrJobNotFound, id)
}

// List returns every job of every replica, newest first.
func (j *Jobs) List() []Job {
	queued := j.queued("")
	j.mu.Lock()
	out := make([]Job, 0, len(j.jobs)+len(queued))
	for _, s := range j.jobs {
		out = append(out, cloneJob(&s.job))
	}
	j.mu.Unlock()
	out = append(out, j.foreign("")...)
	// The queue is read first so that no job is missed; one claimed since then (here or by another replica) is
	// listed once, as claimed.
	for _, q := range queued {
		if !slices.ContainsFunc(out, func(o Job) bool { return o.ID == q.ID }) {
			out = append(out, q)
		}
	}
	slices.SortFunc(out, func(a, b Job) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out
}

func cloneJob(j *Job) Job {
	c := *j
	c.History = slices.Clone(j.History)
	c.Request.Hidden = slices.Clone(j.Request.Hidden)
	return c
}

// Cancel stops a queued or running job; a running one stops within one mini-batch. A job of another replica is
// asked to stop through a marker file its replica acts on within a heartbeat.
func (j *Jobs) Cancel(id string) (Job, error) {
	if !validJobID.MatchString(id) {
		return Job{}, fmt.Errorf("%w: %q", ErrJobNotFound, id)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	// A job waiting in the shared queue is claimed, as a runner would, so that no runner can start it.
	if os.Rename(filepath.Join(j.cfg.Dir, queueDir, id+".json"), filepath.Join(j.own(), id+".json")) == nil {
		if job, err := readJob(filepath.Join(j.own(), id+".json")); err == nil {
			job.Replica = j.cfg.Replica
			j.jobs[id] = &jobState{job: job}
		}
	}
	s, ok := j.jobs[id]
	if !ok {
		others := j.foreign(id)
		if len(others) == 0 {
			return Job{}, fmt.Errorf("%w: %q", ErrJobNotFound, id)
		}
		job := others[0]
		if job.Finished() {
			return job, ErrJobFinished
		}
		if err := os.WriteFile(filepath.Join(j.cfg.Dir, job.Replica, id+".cancel"), nil, 0o644); err != nil {
			return job, err
		}
		return job, nil
	}
	switch {
	case s.job.Finished():
		return cloneJob(&s.job), ErrJobFinished
	case s.committed:
		return cloneJob(&s.job), ErrTooLate
	case s.cancel != nil:
		s.cancel() // the runner records the cancellation when Train returns
	default:
		now := time.Now().UTC()
		s.job.Status, s.job.FinishedAt = StatusCancelled, &now
		j.save(&s.job)
	}
	return cloneJob(&s.job), nil
}

// update changes a job under the lock, persists it when asked (state changes and epochs, not every progress tick),
// and tells the observer.
func (j *Jobs) update(id string, persist bool, f func(*Job)) {
	j.mu.Lock()
	s := j.jobs[id]
	f(&s.job)
	if persist {
		j.save(&s.job)
	}
	job := cloneJob(&s.job)
	j.mu.Unlock()
	if j.cfg.Observe != nil {
		j.cfg.Observe(job)
	}
}

// save writes the job record atomically. A failure to persist is not fatal to the job: it is kept in memory, a
// finished job's error says its record is not saved, and SaveFailed is told.
func (j *Jobs) save(job *Job) {
	data, err := json.MarshalIndent(job, "", "  ")
	if err == nil {
		err = atomicfile.Write(filepath.Join(j.own(), job.ID+".json"), data)
	}
	if err == nil {
		return
	}
	err = j.relative(err)
	if job.Finished() && !strings.Contains(job.Error, recordNotSaved) {
		job.Error = strings.TrimPrefix(job.Error+"; "+recordNotSaved+" ("+err.Error()+")", "; ")
	}
	if j.cfg.SaveFailed != nil {
		j.cfg.SaveFailed(cloneJob(job), err)
	}
}

// recordNotSaved is added to the error of a finished job whose record could not be written.
const recordNotSaved = "the job's record could not be saved, so this state is lost at the next restart"

// relative rewrites the folder holding the jobs folder (MODEL_DIR) out of an error's message: job errors reach API
// clients, which have no business knowing the server's file layout.
func (j *Jobs) relative(err error) error {
	return errors.New(strings.ReplaceAll(err.Error(), filepath.Dir(j.cfg.Dir)+string(filepath.Separator), ""))
}

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
				lowerThreadPriority()
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
