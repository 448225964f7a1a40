package membudget

import (
	"context"
	"errors"
	"testing"
	"testing/fstest"
)

func TestReserveRefusesWhatNeverFits(t *testing.T) {
	b := New(100)
	err := b.Reserve(context.Background(), 101)
	if !errors.Is(err, ErrNeverFits) {
		t.Fatalf("got %v; want ErrNeverFits", err)
	}
	if b.Used() != 0 {
		t.Fatalf("used %d after a refusal; want 0", b.Used())
	}
}

func TestTryReserveFailsFastWhenFull(t *testing.T) {
	b := New(100)
	if err := b.TryReserve(80); err != nil {
		t.Fatal(err)
	}
	if err := b.TryReserve(30); !errors.Is(err, ErrBusy) {
		t.Fatalf("got %v; want ErrBusy", err)
	}
	b.Release(80)
	if err := b.TryReserve(30); err != nil {
		t.Fatalf("after release: %v", err)
	}
	if b.Used() != 30 || b.Peak() != 80 {
		t.Fatalf("used %d peak %d; want 30 and 80", b.Used(), b.Peak())
	}
}

func TestReserveEndsWithTheContext(t *testing.T) {
	b := New(100)
	b.TryReserve(100)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := b.Reserve(ctx, 1)
	if !errors.Is(err, ErrBusy) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v; want ErrBusy and context.Canceled", err)
	}
}

// A small reservation is granted while a large one waits: no head-of-line blocking.
func TestSmallReservationPassesAWaitingLargeOne(t *testing.T) {
	b := New(100)
	if err := b.TryReserve(60); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	large := make(chan error, 1)
	go func() { large <- b.Reserve(ctx, 90) }()
	// Whether or not the large one is waiting yet, the small one fits now and must not wait for it.
	if err := b.TryReserve(30); err != nil {
		t.Fatalf("small reservation: %v", err)
	}
	b.Release(60)
	b.Release(30)
	if err := <-large; err != nil {
		t.Fatalf("large reservation after release: %v", err)
	}
	if b.Used() != 90 {
		t.Fatalf("used %d; want 90", b.Used())
	}
}

func TestHoldGrowsAndReleasesAsAWhole(t *testing.T) {
	for _, in := range []bool{false, true} {
		b := New(100)
		h := b.Hold()
		if in {
			var kept struct {
				other int
				h     Hold
			}
			h = b.HoldIn(&kept.h)
			if h != &kept.h {
				t.Fatal("HoldIn returned another Hold than the one it was given")
			}
		}
		holdGrowsAndReleases(t, b, h)
	}
}

func holdGrowsAndReleases(t *testing.T, b *Budget, h *Hold) {
	t.Helper()
	for range 5 {
		if err := h.Grow(20); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Grow(1); !errors.Is(err, ErrBusy) {
		t.Fatalf("got %v; want ErrBusy", err)
	}
	h.Release()
	if b.Used() != 0 || h.Held() != 0 {
		t.Fatalf("used %d held %d; want 0", b.Used(), h.Held())
	}
}

func TestNilBudgetIsUnlimited(t *testing.T) {
	var b *Budget
	if err := b.Reserve(context.Background(), 1<<62); err != nil {
		t.Fatal(err)
	}
	b.Release(1 << 62)
	h := b.Hold()
	if err := h.Grow(1 << 40); err != nil {
		t.Fatal(err)
	}
	h.Release()
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"600MiB": 600 << 20, "1GiB": 1 << 30, "1Gi": 1 << 30, "123": 123, "2G": 2e9, "512 KiB": 512 << 10, "10MB": 10e6,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-5MiB", "lots", "1.5GiB", "9999999999TiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) succeeded; want an error", in)
		}
	}
}

func TestCgroupLimit(t *testing.T) {
	for _, c := range []struct {
		name string
		fs   fstest.MapFS
		want int64
	}{
		{"v2 limit", fstest.MapFS{"memory.max": {Data: []byte("1073741824\n")}}, 1 << 30},
		{"v2 no limit", fstest.MapFS{"memory.max": {Data: []byte("max\n")}}, 0},
		{"v1 limit", fstest.MapFS{"memory/memory.limit_in_bytes": {Data: []byte("536870912\n")}}, 512 << 20},
		{"v1 no limit", fstest.MapFS{"memory/memory.limit_in_bytes": {Data: []byte("9223372036854771712\n")}}, 0},
		{"no cgroup", fstest.MapFS{}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := CgroupLimit(c.fs); got != c.want {
				t.Fatalf("got %d; want %d", got, c.want)
			}
		})
	}
}

func TestPlanKeepsHeadroomAndSoftLimitBetween(t *testing.T) {
	p := NewPlan(600<<20, "MEMORY_LIMIT")
	if p.Budget != 450<<20 || p.SoftLimit != 525<<20 {
		t.Fatalf("budget %d soft %d; want 450 MiB and 525 MiB", p.Budget, p.SoftLimit)
	}
	if p := NewPlan(0, ""); p.Limit != DefaultLimit || p.Source != "default" {
		t.Fatalf("got %+v; want the default limit", p)
	}
	if p := NewPlan(100<<20, "x"); p.Budget != 50<<20 {
		t.Fatalf("small limit: budget %d; want half", p.Budget)
	}
}
