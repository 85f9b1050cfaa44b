package runtimetune

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// restore puts the GC percent and GOMAXPROCS back as they were.
func restore(t *testing.T) {
	gc := debug.SetGCPercent(100)
	debug.SetGCPercent(gc)
	p := runtime.GOMAXPROCS(0)
	t.Cleanup(func() {
		debug.SetGCPercent(gc)
		runtime.GOMAXPROCS(p)
	})
}

// gcPercent reads the GC percentage in force.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestApplyDefaults(t *testing.T) {
	restore(t)
	t.Setenv("GOGC", "")
	t.Setenv("GOMAXPROCS", "")
	runtime.GOMAXPROCS(runtime.NumCPU())
	runtime.GC() // so that the live heap is known
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := Apply(ctx)
	want := Settings{GCPercent: GCPercent, MinHeap: MinHeap, GCSource: "runtimetune", Procs: runtime.NumCPU() + 1, ProcsSource: "runtimetune"}
	if s != want {
		t.Fatalf("Apply() = %+v, want %+v", s, want)
	}
	// A test binary's live heap is a few MB: far under MinHeap/5, so the
	// floor, not GCPercent, sets the percentage.
	if got := gcPercent(); got <= 4*GCPercent {
		t.Fatalf("GC percent in force = %d, want the heap floor's (well over %d)", got, GCPercent)
	}
	if got := runtime.GOMAXPROCS(0); got != runtime.NumCPU()+1 {
		t.Fatalf("GOMAXPROCS in force = %d, want %d", got, runtime.NumCPU()+1)
	}
}

func TestApplyKeepsEnvironment(t *testing.T) {
	restore(t)
	t.Setenv("GOGC", "150")
	t.Setenv("GOMAXPROCS", "1")
	debug.SetGCPercent(150) // what the runtime read from GOGC at start
	runtime.GOMAXPROCS(1)
	s := Apply(context.Background())
	want := Settings{GCPercent: 150, GCSource: "GOGC", Procs: 1, ProcsSource: "GOMAXPROCS"}
	if s != want {
		t.Fatalf("Apply() = %+v, want %+v", s, want)
	}
	if got := gcPercent(); got != 150 {
		t.Fatalf("GC percent in force = %d, want GOGC's 150", got)
	}
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("GOMAXPROCS in force = %d, want 1", got)
	}
}

func TestProcs(t *testing.T) {
	for _, c := range []struct {
		env           string
		current, cpus int
		want          int
		source        string
	}{
		{"", 2, 2, 3, "runtimetune"},
		{"", 16, 16, 17, "runtimetune"},
		{"", 2, 8, 2, "default"}, // a container quota of 2 CPUs on 8
		{"4", 4, 2, 4, "GOMAXPROCS"},
		{"2", 2, 2, 2, "GOMAXPROCS"},
	} {
		got, src := procs(c.env, c.current, c.cpus)
		if got != c.want || src != c.source {
			t.Errorf("procs(%q, %d, %d) = %d, %s; want %d, %s", c.env, c.current, c.cpus, got, src, c.want, c.source)
		}
	}
}

func TestFloorPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 400},         // no collection yet
		{16 * mib, 1500}, // 16 MiB * (1 + 15) = 256 MiB
		{51 * mib, 401},  // just under 256/5
		{64 * mib, 400},  // 64 * 5 = 320 MiB > 256 already
		{300 * mib, 400}, // over the floor
		{1, maxPercent},  // absurdly small: capped, no int32 overflow
	} {
		if got := floorPercent(400, 256*mib, c.live); got != c.want {
			t.Errorf("floorPercent(400, 256 MiB, %d) = %d, want %d", c.live, got, c.want)
		}
	}
}

// TestFloorFollowsLiveHeap grows the live heap past the floor's reach and
// shrinks it again: the percentage must follow both ways.
func TestFloorFollowsLiveHeap(t *testing.T) {
	restore(t)
	const minHeap = 64 << 20
	f := newFloor(GCPercent, minHeap)
	runtime.GC()
	f.check()
	if got := gcPercent(); got <= GCPercent {
		t.Fatalf("small live heap: GC percent %d, want over %d", got, GCPercent)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.keep(ctx, 5*time.Millisecond)

	big := make([]byte, 32<<20) // live: 32 MiB * 5 > 64 MiB
	for i := range big {
		big[i] = byte(i)
	}
	waitPercent(t, func(p int) bool { return p == GCPercent }, "== GCPercent with 32 MiB live")
	runtime.KeepAlive(big)
	big = nil
	waitPercent(t, func(p int) bool { return p > GCPercent }, "> GCPercent once the 32 MiB are garbage")
}

func waitPercent(t *testing.T, ok func(int) bool, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC() // the live heap is measured by a collection
		if p := gcPercent(); ok(p) {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("GC percent %d, want %s", p, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
