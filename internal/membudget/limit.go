package membudget

import (
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"strings"
)

// units are the suffixes ParseSize accepts, binary (KiB, Ki) and decimal (KB, K).
var units = []struct {
	suffix string
	mult   int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"kB", 1e3},
	{"T", 1e12}, {"G", 1e9}, {"M", 1e6}, {"K", 1e3}, {"k", 1e3}, {"B", 1},
}

// ParseSize reads a size in bytes: a whole number, optionally followed by a unit, binary ("600MiB", "1Gi") or
// decimal ("512MB", "2G"), as Kubernetes and people write them.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size: want a positive whole number of bytes, optionally with a unit such as MiB or GiB", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// Format writes n bytes for people: "600 MiB", "1.5 GiB", "512 B".
func Format(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'g', 3, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatInt((n+1<<19)>>20, 10) + " MiB"
	case n >= 1<<10:
		return strconv.FormatInt((n+1<<9)>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

// unlimited is the value above which a cgroup limit means "no limit" (v1 reports about 2^63 rounded to a page).
const unlimited = 1 << 60

// CgroupLimit returns the memory limit of the container the process runs in, read from fsys, the cgroup file
// system's root (/sys/fs/cgroup): cgroup v2's memory.max, else v1's memory/memory.limit_in_bytes. It returns 0 when
// neither file exists or the limit is "max" (no limit).
func CgroupLimit(fsys fs.FS) int64 {
	for _, name := range []string{"memory.max", "memory/memory.limit_in_bytes"} {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= unlimited {
			return 0
		}
		return n
	}
	return 0
}

// Defaults of Plan.
const (
	// DefaultLimit is the process limit assumed when neither MEMORY_LIMIT nor a cgroup limit is set.
	DefaultLimit = 2 << 30
	// MinHeadroom is the least memory kept outside the budget for the Go runtime, the served models, goroutine
	// stacks, connection buffers and everything else nobody reserves.
	MinHeadroom = 64 << 20
)

// Plan is how the process divides its memory limit.
type Plan struct {
	Limit     int64  // the process's memory limit in bytes
	Source    string // where Limit came from: "MEMORY_LIMIT", "cgroup" or "default"
	Budget    int64  // what consumers may reserve: Limit less the headroom
	SoftLimit int64  // the Go runtime's soft memory limit: halfway between Budget and Limit
}

// NewPlan divides limit: a quarter (at least MinHeadroom, at most half) is headroom for what nobody reserves, the
// rest is the budget, and the Go runtime's soft limit sits halfway between them, so the collector works hard
// before the hard limit is near. A limit of 0 means DefaultLimit.
func NewPlan(limit int64, source string) Plan {
	if limit <= 0 {
		limit, source = DefaultLimit, "default"
	}
	headroom := min(max(limit/4, MinHeadroom), limit/2)
	return Plan{Limit: limit, Source: source, Budget: limit - headroom, SoftLimit: limit - headroom/2}
}
