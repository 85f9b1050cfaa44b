package swar

import "testing"

// Every classifier must agree with its one-byte definition for every byte
// value, in every position of the word and whatever its neighbours are.
func TestClassifiers(t *testing.T) {
	isWord := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
	}
	classifiers := []struct {
		name string
		f    func(uint64) uint64
		want func(byte) bool
	}{
		{"Word", Word, isWord},
		{"InRange(A,Z)", func(x uint64) uint64 { return InRange(x, 'A', 'Z') }, func(c byte) bool { return c >= 'A' && c <= 'Z' }},
		{"InRange(-,/)", func(x uint64) uint64 { return InRange(x, '-', '/') }, func(c byte) bool { return c >= '-' && c <= '/' }},
		{"InRange(1,0x7f)", func(x uint64) uint64 { return InRange(x, 1, 0x7f) }, func(c byte) bool { return c >= 1 && c < 0x80 }},
		{"Equal(+)", func(x uint64) uint64 { return Equal(x, '+') }, func(c byte) bool { return c == '+' }},
		{"Equal(0)", func(x uint64) uint64 { return Equal(x, 0) }, func(c byte) bool { return c == 0 }},
	}
	for _, cl := range classifiers {
		for _, fill := range []uint64{0, 0xffffffffffffffff, 0x4161207a5f393010, 0x7f80002b2f2d5b40} {
			for c := 0; c < 256; c++ {
				for pos := 0; pos < 8; pos++ {
					x := fill&^(0xff<<(8*pos)) | uint64(c)<<(8*pos)
					m := cl.f(x)
					if m&^High != 0 {
						t.Fatalf("%s(%#x): stray bits %#x", cl.name, x, m)
					}
					for k := 0; k < 8; k++ {
						b := byte(x >> (8 * k))
						if got := m>>(8*k)&0x80 != 0; got != cl.want(b) {
							t.Fatalf("%s(%#x): byte %d (%#x) is %v", cl.name, x, k, b, got)
						}
					}
				}
			}
		}
	}
}

func TestLoadFirst(t *testing.T) {
	s := "0123456789"
	if x := Load(s, 2); byte(x) != '2' || byte(x>>56) != '9' {
		t.Fatalf("Load: %#x", x)
	}
	if First(0) != 8 || First(0x80) != 0 || First(0x8000_0000_0000_0000) != 7 || First(0x80_0080_0000) != 2 {
		t.Fatal("First")
	}
}
