package testwait

import (
	"testing"
	"time"
)

func TestDeadlineIsBeforeTheBinarysAndInTheFuture(t *testing.T) {
	d := Deadline(t)
	if !d.After(time.Now()) {
		t.Fatalf("deadline %v is not in the future", d)
	}
	if bd, ok := t.Deadline(); ok && !d.Before(bd) {
		t.Errorf("deadline %v is not before the binary's %v", d, bd)
	}
}

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	n := 0
	For(t, "three polls", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("polled %d times; want 3", n)
	}
}
