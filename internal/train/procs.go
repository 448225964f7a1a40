package train

import (
	"runtime"
	"sync"
)

// A background job's goroutine is compute-bound and holds a Go P (a slot of GOMAXPROCS) while it runs, whatever its
// thread's priority: with GOMAXPROCS at the number of cores, serving goroutines would get one P fewer, and wait for
// the scheduler's 10 ms time slice to take it back. So while background jobs run, GOMAXPROCS has one more P per
// job. Their threads run at the lowest priority, so the operating system gives the cores to serving threads first,
// and training has the time they leave.
var spare struct {
	sync.Mutex
	jobs, base int
}

// addJobProc raises GOMAXPROCS by one for a background job; release undoes it. When the last job ends, GOMAXPROCS
// goes back to the value it had when the first one started, whoever set it.
func addJobProc() (release func()) {
	spare.Lock()
	if spare.jobs == 0 {
		spare.base = runtime.GOMAXPROCS(0)
	}
	spare.jobs++
	runtime.GOMAXPROCS(spare.base + spare.jobs)
	spare.Unlock()
	return func() {
		spare.Lock()
		defer spare.Unlock()
		spare.jobs--
		runtime.GOMAXPROCS(spare.base + spare.jobs)
	}
}
