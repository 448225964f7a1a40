// Replicas sharing MODEL_DIR: the heartbeat of this replica's jobs, the shared queue that any replica claims
// from, and the records of the jobs other replicas run.

package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"
)

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
