package train

import (
	"syscall"
	"unsafe"
)

// schedIdle is Linux's SCHED_IDLE policy: the thread runs only on CPU time that no ordinary thread wants, and an
// ordinary thread that wakes up takes its core at once.
const schedIdle = 5

// lowerThreadPriority gives the calling OS thread the lowest CPU priority there is: SCHED_IDLE, or nice 19 where
// that is refused (a seccomp profile may forbid sched_setscheduler). Serving threads then get a core first whenever
// both want one. The caller must hold the thread (runtime.LockOSThread) and let it exit with the goroutine.
func lowerThreadPriority() {
	tid := syscall.Gettid()
	var param struct{ priority int32 }
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), schedIdle, uintptr(unsafe.Pointer(&param))); errno == 0 {
		return
	}
	syscall.Setpriority(syscall.PRIO_PROCESS, tid, 19)
}

// threadPriority reports the calling thread's scheduling policy and nice value, for tests.
func threadPriority() (policy int, nice int) {
	tid := syscall.Gettid()
	p, _, _ := syscall.RawSyscall(syscall.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0, 0)
	// getpriority returns 20-nice for a thread, to keep the result positive.
	n, _ := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
	return int(p), 20 - n
}
