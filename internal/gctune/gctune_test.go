package gctune

import (
	"runtime/debug"
	"testing"
)

func TestApplyDefault(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	if p, src := Apply(); p != Percent || src != "default" {
		t.Fatalf("Apply() = %d, %s; want %d, default", p, src, Percent)
	}
	if got := debug.SetGCPercent(100); got != Percent {
		t.Fatalf("GC percent in force = %d, want %d", got, Percent)
	}
}

func TestApplyKeepsGOGC(t *testing.T) {
	t.Setenv("GOGC", "150")
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	if p, src := Apply(); p != 150 || src != "GOGC" {
		t.Fatalf("Apply() = %d, %s; want 150, GOGC", p, src)
	}
}
