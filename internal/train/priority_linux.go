package train

import "syscall"

// lowerThreadPriority gives the calling OS thread the lowest CPU priority (nice 19), so the scheduler runs serving
// threads first whenever both want a core. The caller must hold the thread (runtime.LockOSThread) and let it exit
// with the goroutine.
func lowerThreadPriority() {
	syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19)
}
