//go:build !linux

package train

// lowerThreadPriority does nothing where threads have no priority of their own we can set.
func lowerThreadPriority() {}

// schedIdle has no meaning here; tests skip.
const schedIdle = -1

// threadPriority reports nothing where threads have no priority of their own.
func threadPriority() (policy int, nice int) { return -1, 0 }
