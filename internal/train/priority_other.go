//go:build !linux

package train

// lowerThreadPriority does nothing where threads have no priority of their own we can set.
func lowerThreadPriority() {}
