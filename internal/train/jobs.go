package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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
	// NormalPriority keeps a background job's thread at normal priority. SCHED_IDLE gets almost no CPU while
	// ordinary threads keep both cores busy, so a job can wait as long as serving (or anything else) is that busy:
	// right for a server, wrong for a test that must finish on a loaded machine (TRAIN_PRIORITY=normal).
	NormalPriority bool
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
		Progress: JobProgress{Epochs: max(req.Epochs, 0)}, History: []Epoch{}}
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
