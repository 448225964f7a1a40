package train

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/registry"
	"github.com/perceptron-dev/perceptron/internal/testwait"
)

// mnistSource serves the real MNIST training set as "mnist".
type mnistSource struct{ t testing.TB }

func (m mnistSource) Load(ctx context.Context, name string) (*dataset.Set, *dataset.Set, model.Input, error) {
	if name != "mnist" {
		return nil, nil, model.Input{}, errors.New("unknown data set")
	}
	tr, te := loadMNIST(m.t)
	return tr, te, model.Input{Width: 28, Height: 28, Preprocess: model.PreprocessMNIST}, nil
}

// servingStub stands in for the inference engine.
type servingStub struct {
	mu  sync.Mutex
	net *model.Network
}

func (s *servingStub) get(string) *model.Network { s.mu.Lock(); defer s.mu.Unlock(); return s.net }
func (s *servingStub) set(n *model.Network)      { s.mu.Lock(); s.net = n; s.mu.Unlock() }

// goLive activates a version in reg and serves it, as the composition root's GoLive does.
func (s *servingStub) goLive(reg *registry.Registry) func(string) error {
	return func(v string) error {
		n, err := reg.Activate(v)
		if err == nil {
			s.set(n)
		}
		return err
	}
}

func newJobsForTest(t *testing.T, dir string, serving *servingStub) (*Jobs, *registry.Registry) {
	t.Helper()
	reg, err := registry.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	j, err := NewJobs(JobsConfig{
		Dir: filepath.Join(dir, "jobs"), Registry: reg, Data: mnistSource{t}, Background: true, NormalPriority: true,
		Serving: serving.get, GoLive: serving.goLive(reg),
	})
	if err != nil {
		t.Fatal(err)
	}
	j.Start()
	t.Cleanup(j.Close)
	return j, reg
}

func waitJob(t *testing.T, j *Jobs, id string, done func(Job) bool) Job {
	t.Helper()
	deadline := testwait.Deadline(t)
	for {
		job, err := j.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		if done(job) {
			return job
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s", id, job.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func untrained(t *testing.T) *model.Network {
	labels := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	n, err := model.New(model.Info{Name: "untrained", Version: "untrained-1", Layers: []int{784, 10}, Activation: model.ReLU,
		Labels: labels, Input: model.Input{Width: 28, Height: 28, Preprocess: model.PreprocessMNIST}}, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestJobTrainsStoresAndActivatesABetterModel(t *testing.T) {
	serving := &servingStub{net: untrained(t)}
	j, reg := newJobsForTest(t, t.TempDir(), serving)
	req := smallRequest()
	job, err := j.Submit(req)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != StatusQueued || job.ID == "" {
		t.Fatalf("submitted job %+v", job)
	}
	job = waitJob(t, j, job.ID, func(j Job) bool { return j.Finished() })
	if job.Status != StatusSucceeded || !job.Activated || job.ModelVersion == "" {
		t.Fatalf("job ended %s, activated %v, version %q, error %q", job.Status, job.Activated, job.ModelVersion, job.Error)
	}
	if len(job.History) != req.Epochs || job.Progress.Fraction != 1 || job.StartedAt == nil || job.FinishedAt == nil {
		t.Errorf("job record incomplete: %+v", job)
	}
	if !strings.Contains(job.Decision, "beats") {
		t.Errorf("decision %q; want it to say the new model beats the serving one", job.Decision)
	}
	if got := serving.get(""); got.Version != job.ModelVersion || got.Parent != "untrained-1" {
		t.Errorf("serving %s (parent %s); want the new %s with parent untrained-1", got.Version, got.Parent, job.ModelVersion)
	}
	if active, _ := reg.ActiveOf("mnist-mlp"); active != job.ModelVersion {
		t.Errorf("registry active %q; want %q", active, job.ModelVersion)
	}
	if acc := serving.get("").Metrics.TestAccuracy; acc < 0.8 {
		t.Errorf("the job's model records test accuracy %.3f; want it measured on the MNIST test set", acc)
	}

	// A second job that cannot beat the first (one tiny epoch) is stored but not activated.
	weak := smallRequest()
	weak.Limit, weak.Epochs = 300, 1
	job2, _ := j.Submit(weak)
	job2 = waitJob(t, j, job2.ID, func(j Job) bool { return j.Finished() })
	if job2.Status != StatusSucceeded || job2.Activated || !strings.Contains(job2.Decision, "does not beat") {
		t.Errorf("weak job: %s activated=%v decision %q", job2.Status, job2.Activated, job2.Decision)
	}
	if _, err := reg.Load(job2.ModelVersion); err != nil {
		t.Errorf("the weak job's model is not in the registry: %v", err)
	}
}

func TestCancelARunningJob(t *testing.T) {
	j, _ := newJobsForTest(t, t.TempDir(), &servingStub{})
	base := runtime.GOMAXPROCS(0)
	req := smallRequest()
	req.Limit, req.Epochs = 0, 50
	job, _ := j.Submit(req)
	waitJob(t, j, job.ID, func(j Job) bool { return j.Status == StatusRunning && j.Progress.Fraction > 0 })
	// A background job has a P of its own while it runs, so serving keeps all of its own (see addJobProc).
	if got := runtime.GOMAXPROCS(0); got != base+1 {
		t.Errorf("GOMAXPROCS %d while a background job runs; want %d", got, base+1)
	}
	start := time.Now()
	if _, err := j.Cancel(job.ID); err != nil {
		t.Fatal(err)
	}
	job = waitJob(t, j, job.ID, func(j Job) bool { return j.Finished() })
	if job.Status != StatusCancelled {
		t.Errorf("status %s; want cancelled", job.Status)
	}
	t.Logf("cancelled in %v", time.Since(start))
	testwait.For(t, "GOMAXPROCS back to its value before the job", func() bool { return runtime.GOMAXPROCS(0) == base })
	if _, err := j.Cancel(job.ID); !errors.Is(err, ErrJobFinished) {
		t.Errorf("cancelling a finished job: %v; want ErrJobFinished", err)
	}
	if _, err := j.Cancel("0123456789abcdef"); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("cancelling an unknown job: %v; want ErrJobNotFound", err)
	}
}

func TestJobsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	host, _ := os.Hostname()
	jobsDir := filepath.Join(dir, "jobs", host)
	os.MkdirAll(jobsDir, 0o755)
	now := time.Now().UTC()
	for _, job := range []Job{
		{ID: "aaaaaaaaaaaaaaaa", Status: StatusRunning, Request: smallRequest(), CreatedAt: now, StartedAt: &now},
		{ID: "bbbbbbbbbbbbbbbb", Status: StatusQueued, Request: smallRequest(), CreatedAt: now},
	} {
		data, _ := json.Marshal(job)
		os.WriteFile(filepath.Join(jobsDir, job.ID+".json"), data, 0o644)
	}
	j, _ := newJobsForTest(t, dir, &servingStub{})
	interrupted, err := j.Get("aaaaaaaaaaaaaaaa")
	if err != nil {
		t.Fatal(err)
	}
	if interrupted.Status != StatusFailed || !strings.Contains(interrupted.Error, "interrupted") || interrupted.FinishedAt == nil {
		t.Errorf("job running at the restart: %s %q; want failed, interrupted", interrupted.Status, interrupted.Error)
	}
	queued := waitJob(t, j, "bbbbbbbbbbbbbbbb", func(j Job) bool { return j.Finished() })
	if queued.Status != StatusSucceeded {
		t.Errorf("job queued at the restart ended %s (%s); want it run to success", queued.Status, queued.Error)
	}
	// The record on disk says the same.
	data, _ := os.ReadFile(filepath.Join(jobsDir, "aaaaaaaaaaaaaaaa.json"))
	if !strings.Contains(string(data), `"failed"`) {
		t.Errorf("persisted record: %s", data)
	}
}

func TestSubmitRefusesInvalidRequestsAndAFullQueue(t *testing.T) {
	reg, _ := registry.Open(t.TempDir(), nil)
	// No runners free: concurrency 1 with a job that blocks on its data source until the test ends.
	block := make(chan struct{})
	defer close(block)
	j, err := NewJobs(JobsConfig{Dir: t.TempDir(), Registry: reg, QueueSize: 2, Data: blockingSource(block),
		Serving: func(string) *model.Network { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	j.Start()
	defer j.Close()
	bad := smallRequest()
	bad.Epochs = 0
	if _, err := j.Submit(bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("epochs 0: %v; want ErrInvalid", err)
	}
	var full error
	for range 5 {
		if _, err := j.Submit(smallRequest()); err != nil {
			full = err
		}
	}
	if !errors.Is(full, ErrQueueFull) {
		t.Errorf("5 jobs into a queue of 2: %v; want ErrQueueFull", full)
	}
}

type blockingSource chan struct{}

func (b blockingSource) Load(ctx context.Context, name string) (*dataset.Set, *dataset.Set, model.Input, error) {
	select {
	case <-b:
	case <-ctx.Done():
	}
	return nil, nil, model.Input{}, errors.New("blocked")
}

// TestReplicasShareJobRecords runs two job runners on one folder, as two pods on one MODEL_DIR: each sees the
// other's jobs, a cancel through either reaches the runner, a restart of one does not touch the other's running
// job, and a job whose replica vanished is reported failed instead of running for ever.
func TestReplicasShareJobRecords(t *testing.T) {
	dir := t.TempDir()
	reg, _ := registry.Open(dir, nil)
	newRunner := func(name string) *Jobs {
		j, err := NewJobs(JobsConfig{Dir: filepath.Join(dir, "jobs"), Replica: name, Registry: reg, Data: mnistSource{t},
			Background: true, NormalPriority: true, Serving: func(string) *model.Network { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		j.Start()
		t.Cleanup(j.Close)
		return j
	}
	a := newRunner("pod-a")
	req := smallRequest()
	req.Limit, req.Epochs = 0, 100
	job, err := a.Submit(req)
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, a, job.ID, func(j Job) bool { return j.Status == StatusRunning })
	// b starts once a runs the job: queued jobs go to whichever replica claims them first.
	b := newRunner("pod-b")

	// A restart of b (a new runner on its folder) must leave a's running job alone.
	b.Close()
	b = newRunner("pod-b")
	seen, err := b.Get(job.ID)
	if err != nil || seen.Replica != "pod-a" || seen.Status != StatusRunning {
		t.Fatalf("b sees %+v, %v; want a's job running on pod-a", seen, err)
	}
	if list := b.List(); len(list) != 1 || list[0].ID != job.ID {
		t.Errorf("b lists %d jobs; want a's one", len(list))
	}
	// Cancel through b; a stops the job within a heartbeat.
	if _, err := b.Cancel(job.ID); err != nil {
		t.Fatal(err)
	}
	done := waitJob(t, a, job.ID, func(j Job) bool { return j.Finished() })
	if done.Status != StatusCancelled {
		t.Errorf("after a cancel through b the job is %s; want cancelled", done.Status)
	}

	// A replica that vanished with a running job: its record goes stale and reads as failed.
	ghost := filepath.Join(dir, "jobs", "pod-gone")
	os.MkdirAll(ghost, 0o755)
	now := time.Now().UTC()
	data, _ := json.Marshal(Job{ID: "cccccccccccccccc", Status: StatusRunning, Request: smallRequest(), CreatedAt: now, StartedAt: &now})
	path := filepath.Join(ghost, "cccccccccccccccc.json")
	os.WriteFile(path, data, 0o644)
	old := time.Now().Add(-2 * staleAfter)
	os.Chtimes(path, old, old)
	lost, err := a.Get("cccccccccccccccc")
	if err != nil || lost.Status != StatusFailed || !strings.Contains(lost.Error, "pod-gone") {
		t.Errorf("a job of a vanished replica reads %+v, %v; want failed, naming the replica", lost, err)
	}
}

// TestLowerThreadPriority checks that a training thread ends at the lowest priority the system grants: SCHED_IDLE,
// or nice 19 where that policy is refused.
func TestLowerThreadPriority(t *testing.T) {
	if policy, _ := threadPriority(); policy < 0 {
		t.Skip("threads have no priority of their own on " + runtime.GOOS)
	}
	done := make(chan [2]int)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine, lowered
		lowerThreadPriority()
		policy, nice := threadPriority()
		done <- [2]int{policy, nice}
	}()
	got := <-done
	if got[0] != schedIdle && got[1] != 19 {
		t.Errorf("policy %d, nice %d; want SCHED_IDLE (%d) or nice 19", got[0], got[1], schedIdle)
	}
	t.Logf("policy %d, nice %d", got[0], got[1])
}

// TestCancelDuringTheLastEpochNeverActivates cancels a job from inside its last epoch's report, when Train has no
// mini-batch left to notice the cancel in: the job must end cancelled, with nothing stored or activated.
func TestCancelDuringTheLastEpochNeverActivates(t *testing.T) {
	dir := t.TempDir()
	reg, _ := registry.Open(dir, nil)
	serving := &servingStub{}
	var jobs atomic.Pointer[Jobs]
	var cancelErr error
	j, err := NewJobs(JobsConfig{
		Dir: filepath.Join(dir, "jobs"), Registry: reg, Data: mnistSource{t}, Background: true, NormalPriority: true,
		Serving: serving.get, GoLive: serving.goLive(reg),
		Observe: func(job Job) {
			if len(job.History) == job.Request.Epochs && job.Status == StatusRunning && cancelErr == nil {
				_, cancelErr = jobs.Load().Cancel(job.ID)
				if cancelErr == nil {
					cancelErr = errors.New("") // cancelled once; the runner's later updates must not cancel again
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	jobs.Store(j)
	t.Cleanup(j.Close)
	j.Start()
	req := smallRequest()
	req.Epochs, req.Activate = 1, "always"
	job, err := j.Submit(req)
	if err != nil {
		t.Fatal(err)
	}
	job = waitJob(t, j, job.ID, func(j Job) bool { return j.Finished() })
	if cancelErr == nil || cancelErr.Error() != "" {
		t.Fatalf("cancel during the last epoch: %v; want it accepted", cancelErr)
	}
	if job.Status != StatusCancelled || job.Activated {
		t.Errorf("job ended %s, activated %v (%s); want cancelled, not activated", job.Status, job.Activated, job.Error)
	}
	if got := serving.get(""); got != nil {
		t.Errorf("serving %s after a cancelled job; want nothing swapped in", got.Version)
	}
	if active, _ := reg.ActiveOf("mnist-mlp"); active != "" {
		t.Errorf("registry active %q after a cancelled job; want none", active)
	}
	if list, _ := reg.List(); len(list) != 0 {
		t.Errorf("registry holds %d versions after a job cancelled before storing; want none", len(list))
	}
}

// TestCancelPastThePointOfNoReturnSaysTooLate cancels a job after it stored its model and committed to
// activating it: Cancel must say it is too late, and the job must end as promised, succeeded and activated.
func TestCancelPastThePointOfNoReturnSaysTooLate(t *testing.T) {
	serving := &servingStub{}
	j, reg := newJobsForTest(t, t.TempDir(), serving)
	lateErr := make(chan error, 1)
	j.committing = func(id string) {
		_, err := j.Cancel(id)
		lateErr <- err
	}
	req := smallRequest()
	req.Epochs, req.Activate = 1, "always"
	job, err := j.Submit(req)
	if err != nil {
		t.Fatal(err)
	}
	job = waitJob(t, j, job.ID, func(j Job) bool { return j.Finished() })
	if err := <-lateErr; !errors.Is(err, ErrTooLate) {
		t.Errorf("cancel past the point of no return: %v; want ErrTooLate", err)
	}
	if job.Status != StatusSucceeded || !job.Activated {
		t.Errorf("job ended %s, activated %v (%s); want succeeded and activated", job.Status, job.Activated, job.Error)
	}
	if active, _ := reg.ActiveOf("mnist-mlp"); active != job.ModelVersion || serving.get("") == nil {
		t.Errorf("registry active %q; want the job's %s serving", active, job.ModelVersion)
	}
}

// TestAnUnwritableModelDirFailsTheJobClearly makes MODEL_DIR refuse every write (its folders replaced by files,
// which refuses root too): the job fails saying it could not store the model and that its record is not saved,
// the failure to save is reported, and no message names the server's absolute paths.
func TestAnUnwritableModelDirFailsTheJobClearly(t *testing.T) {
	dir := t.TempDir()
	reg, _ := registry.Open(dir, nil)
	var mu sync.Mutex
	var saveErrs []error
	j, err := NewJobs(JobsConfig{
		Dir: filepath.Join(dir, "jobs"), Replica: "pod-a", Registry: reg, Data: mnistSource{t}, Background: true, NormalPriority: true,
		Serving:    func(string) *model.Network { return nil },
		SaveFailed: func(_ Job, err error) { mu.Lock(); saveErrs = append(saveErrs, err); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	j.Start()
	for _, sub := range []string{"versions", "jobs"} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, sub), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	req := smallRequest()
	req.Epochs = 1
	job, err := j.Submit(req)
	if err != nil {
		t.Fatal(err)
	}
	job = waitJob(t, j, job.ID, func(j Job) bool { return j.Finished() })
	if job.Status != StatusFailed || !strings.Contains(job.Error, "storing the model") || !strings.Contains(job.Error, recordNotSaved) {
		t.Errorf("job ended %s: %q; want failed, saying the model was not stored and the record not saved", job.Status, job.Error)
	}
	t.Logf("job error: %s", job.Error)
	if strings.Contains(job.Error, dir) {
		t.Errorf("the job's error names the server's folder %s: %q", dir, job.Error)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(saveErrs) == 0 {
		t.Fatal("the failure to save the job's record was not reported")
	}
	for _, err := range saveErrs {
		if strings.Contains(err.Error(), dir) {
			t.Errorf("a save error names the server's folder: %v", err)
		}
	}
}

// TestQueuedJobsSurviveAReplacedReplica replaces a replica the way a Deployment's rollout does: the old pod stops
// with a job running and one queued, and a pod of another name starts on the same folder. The queued job must run
// on the new pod, as must one a dead pod had claimed but not started; the running one is reported interrupted.
func TestQueuedJobsSurviveAReplacedReplica(t *testing.T) {
	dir := t.TempDir()
	reg, _ := registry.Open(dir, nil)
	block := make(chan struct{})
	defer close(block)
	old, err := NewJobs(JobsConfig{Dir: filepath.Join(dir, "jobs"), Replica: "pod-old", Registry: reg, Data: blockingSource(block),
		Serving: func(string) *model.Network { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	old.Start()
	running, _ := old.Submit(smallRequest())
	waitJob(t, old, running.ID, func(j Job) bool { return j.Status == StatusRunning })
	req := smallRequest()
	req.Epochs, req.Limit = 1, 500
	queued, err := old.Submit(req)
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	// A pod that died between claiming a job and starting it leaves it queued in its folder, untouched.
	ghost := filepath.Join(dir, "jobs", "pod-ghost")
	os.MkdirAll(ghost, 0o755)
	other := req
	other.Seed++ // a model of its own, so its version differs from the other job's
	orphan := Job{ID: "dddddddddddddddd", Status: StatusQueued, Request: other, CreatedAt: time.Now().UTC()}
	data, _ := json.Marshal(orphan)
	path := filepath.Join(ghost, orphan.ID+".json")
	os.WriteFile(path, data, 0o644)
	stale := time.Now().Add(-2 * staleAfter)
	os.Chtimes(path, stale, stale)

	fresh, err := NewJobs(JobsConfig{Dir: filepath.Join(dir, "jobs"), Replica: "pod-new", Registry: reg, Data: mnistSource{t},
		Serving: func(string) *model.Network { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fresh.Close)
	fresh.Start()
	done := waitJob(t, fresh, queued.ID, func(j Job) bool { return j.Finished() })
	if done.Status != StatusSucceeded || done.Replica != "pod-new" {
		t.Errorf("the job queued on the replaced pod ended %s on %q (%s); want succeeded on pod-new", done.Status, done.Replica, done.Error)
	}
	if done := waitJob(t, fresh, orphan.ID, func(j Job) bool { return j.Finished() }); done.Status != StatusSucceeded {
		t.Errorf("the job left queued by a dead pod ended %s (%s); want succeeded", done.Status, done.Error)
	}
	if r, _ := fresh.Get(running.ID); r.Status != StatusFailed || !strings.Contains(r.Error, "interrupted") {
		t.Errorf("the job running on the replaced pod reads %s %q; want failed, interrupted", r.Status, r.Error)
	}
}

// countingSource fails every load at once, counting the loads: each is one start of a job.
type countingSource struct{ n *atomic.Int64 }

func (c countingSource) Load(context.Context, string) (*dataset.Set, *dataset.Set, model.Input, error) {
	c.n.Add(1)
	return nil, nil, model.Input{}, errors.New("no data here")
}

// TestTwoReplicasNeverRunAJobTwice has two replicas with two runners each take jobs from one queue, while some
// jobs are cancelled through either: every job ends exactly once, and no job is started twice.
func TestTwoReplicasNeverRunAJobTwice(t *testing.T) {
	dir := t.TempDir()
	reg, _ := registry.Open(dir, nil)
	var starts atomic.Int64
	var replicas []*Jobs
	for _, name := range []string{"pod-a", "pod-b"} {
		j, err := NewJobs(JobsConfig{Dir: filepath.Join(dir, "jobs"), Replica: name, Registry: reg, Data: countingSource{&starts},
			Concurrency: 2, QueueSize: 64, Serving: func(string) *model.Network { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(j.Close)
		j.Start()
		replicas = append(replicas, j)
	}
	var ids []string
	cancelled := 0
	for i := range 40 {
		job, err := replicas[i%2].Submit(smallRequest())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, job.ID)
		if i%5 == 0 {
			if _, err := replicas[(i+1)%2].Cancel(job.ID); err == nil {
				cancelled++
			}
		}
	}
	ran := 0
	for _, id := range ids {
		job := waitJob(t, replicas[0], id, func(j Job) bool { return j.Finished() })
		if job.Status != StatusFailed && job.Status != StatusCancelled {
			t.Errorf("job %s ended %s (%s); want failed (no data) or cancelled", id, job.Status, job.Error)
		}
		if job.StartedAt != nil {
			ran++
		}
	}
	if got := starts.Load(); got != int64(ran) {
		t.Errorf("%d starts for %d jobs that started; want one each", got, ran)
	}
	if list := replicas[1].List(); len(list) != len(ids) {
		t.Errorf("pod-b lists %d jobs; want %d", len(list), len(ids))
	}
	t.Logf("%d jobs: %d started, %d cancelled through the other replica", len(ids), ran, cancelled)
}

// TestPublishingTheSameWeightsTwiceInOneSecondStoresThemOnce: the version is the creation second and a digest of
// the weights, so the same request trained twice within a second names one version; the second publish must find
// it stored and still activate it, not fail with "already exists".
func TestPublishingTheSameWeightsTwiceInOneSecondStoresThemOnce(t *testing.T) {
	reg, err := registry.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	var versions []string
	for range 2 {
		net := untrained(t)
		net.Created = created
		activated, _, err := Publish(reg, net, nil, "always", nil, true, nil, nil)
		if err != nil || !activated {
			t.Fatalf("publish: activated %v, err %v; want activated, no error", activated, err)
		}
		versions = append(versions, net.Version)
	}
	if versions[0] != versions[1] {
		t.Fatalf("versions %q; want one version for the same weights in the same second", versions)
	}
	if active, _ := reg.ActiveOf("untrained"); active != versions[0] {
		t.Errorf("active %q; want %q", active, versions[0])
	}
}

// TestARunningJobHoldsItsEstimateFromTheMemoryBudget: a job waits while the budget has no room for its estimate,
// trains once it has, holds the estimate while it trains, and gives it back when it ends; a job whose estimate
// can never fit fails saying so.
func TestARunningJobHoldsItsEstimateFromTheMemoryBudget(t *testing.T) {
	budget := membudget.New(64 << 20)
	reg, err := registry.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var held atomic.Int64
	j, err := NewJobs(JobsConfig{Dir: t.TempDir(), Registry: reg, Data: mnistSource{t}, Memory: budget,
		Serving: func(string) *model.Network { return nil },
		Observe: func(job Job) {
			if len(job.History) > 0 {
				held.Store(budget.Used())
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	j.Start()
	defer j.Close()

	if err := budget.TryReserve(budget.Size()); err != nil { // the whole budget, taken by something else
		t.Fatal(err)
	}
	req := smallRequest()
	req.Activate = "never"
	job, err := j.Submit(req)
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, j, job.ID, func(j Job) bool { return j.Status == StatusRunning })
	if got, _ := j.Get(job.ID); len(got.History) > 0 {
		t.Fatalf("the job trained while the budget was full: %+v", got.Progress)
	}
	budget.Release(budget.Size())
	done := waitJob(t, j, job.ID, func(j Job) bool { return j.Finished() })
	if done.Status != StatusSucceeded {
		t.Fatalf("job %s: %s", done.Status, done.Error)
	}
	if held.Load() <= 0 {
		t.Errorf("the budget held %d bytes while the job trained; want its estimate", held.Load())
	}
	if budget.Used() != 0 {
		t.Errorf("after the job the budget holds %d bytes; want 0", budget.Used())
	}

	huge := smallRequest()
	huge.Hidden = []int{4096, 4096, 4096}
	job, err = j.Submit(huge)
	if err != nil {
		t.Fatal(err)
	}
	if done := waitJob(t, j, job.ID, func(j Job) bool { return j.Finished() }); done.Status != StatusFailed ||
		!strings.Contains(done.Error, "MEMORY_LIMIT") {
		t.Errorf("a job beyond the budget ended %s %q; want failed naming MEMORY_LIMIT", done.Status, done.Error)
	}
}

// TestAJobTrainsANamedModelAndComparesWithinIt: a job's `model` names its version's model; with no active version
// of that name, if_better activates it and says so, whatever the process serves (here a model of another name,
// which is not compared with); a validation set under MinValidation examples is warned about in the record.
func TestAJobTrainsANamedModelAndComparesWithinIt(t *testing.T) {
	serving := &servingStub{net: untrained(t)} // model "untrained": another name
	dir := t.TempDir()
	reg, _ := registry.Open(dir, nil)
	var asked []string
	j, err := NewJobs(JobsConfig{Dir: filepath.Join(dir, "jobs"), Registry: reg, Data: mnistSource{t}, Background: true, NormalPriority: true,
		Serving: func(name string) *model.Network {
			asked = append(asked, name)
			if name == serving.net.Name {
				return serving.net
			}
			return nil
		},
		GoLive: serving.goLive(reg)})
	if err != nil {
		t.Fatal(err)
	}
	j.Start()
	defer j.Close()
	req := smallRequest()
	req.Model, req.Limit, req.Epochs = "digits-small", 300, 2 // 30 validation examples
	job, err := j.Submit(req)
	if err != nil {
		t.Fatal(err)
	}
	job = waitJob(t, j, job.ID, func(j Job) bool { return j.Finished() })
	if job.Status != StatusSucceeded || !job.Activated || !strings.Contains(job.Decision, "digits-small had no active version") {
		t.Fatalf("job ended %s, activated %v, decision %q, error %q; want activated as the first of its name", job.Status, job.Activated, job.Decision, job.Error)
	}
	if strings.Join(asked, " ") != "digits-small" {
		t.Errorf("the job compared with the active version of %q; want digits-small's alone", asked)
	}
	if active, _ := reg.ActiveOf("digits-small"); active != job.ModelVersion {
		t.Errorf("digits-small active %q; want %s", active, job.ModelVersion)
	}
	if net, _ := reg.Load(job.ModelVersion); net == nil || net.Name != "digits-small" {
		t.Errorf("stored version %v; want a version of digits-small", net)
	}
	if len(job.Warnings) != 1 || !strings.Contains(job.Warnings[0], "30 examples") {
		t.Errorf("warnings %q; want one about the 30 validation examples", job.Warnings)
	}

	bad := smallRequest()
	bad.Model = "../etc"
	if _, err := j.Submit(bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("Submit with model %q: %v; want ErrInvalid", bad.Model, err)
	}
}
