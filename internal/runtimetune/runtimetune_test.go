package runtimetune

import (
	"runtime"
	"runtime/debug"
	"testing"
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

func TestApplyDefaults(t *testing.T) {
	restore(t)
	t.Setenv("GOGC", "")
	t.Setenv("GOMAXPROCS", "")
	runtime.GOMAXPROCS(runtime.NumCPU())
	s := Apply()
	want := Settings{GCPercent: GCPercent, GCSource: "runtimetune", Procs: runtime.NumCPU() + 1, ProcsSource: "runtimetune"}
	if s != want {
		t.Fatalf("Apply() = %+v, want %+v", s, want)
	}
	if got := debug.SetGCPercent(100); got != GCPercent {
		t.Fatalf("GC percent in force = %d, want %d", got, GCPercent)
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
	s := Apply()
	want := Settings{GCPercent: 150, GCSource: "GOGC", Procs: 1, ProcsSource: "GOMAXPROCS"}
	if s != want {
		t.Fatalf("Apply() = %+v, want %+v", s, want)
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
