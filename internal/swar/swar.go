// Package swar classifies eight bytes at a time, held in a uint64 (SIMD
// within a register), for the scanners' fast paths over ASCII text. A
// classifier sets the high bit of each byte of the word that is in its
// class and clears every other bit; bytes >= 0x80 are in no class.
package swar

import (
	"encoding/binary"
	"math/bits"
)

const (
	// High is the high bit of each byte: the bits classifiers set.
	High = 0x8080808080808080
	ones = 0x0101010101010101
)

// Load returns s[i:i+8] as a little-endian word: byte k of the text is
// byte k of the word.
func Load[T string | []byte](s T, i int) uint64 {
	return binary.LittleEndian.Uint64([]byte(s[i : i+8]))
}

// First returns the index of the first byte a classifier set in m, or 8
// when m is 0.
func First(m uint64) int { return bits.TrailingZeros64(m) >> 3 }

// InRange classifies the bytes in [lo, hi], for 1 <= lo <= hi < 0x80. It
// adds to 7-bit bytes, so no carry crosses into the next byte.
func InRange(x uint64, lo, hi byte) uint64 {
	x7 := x &^ High
	return (x7 + (0x80-uint64(lo))*ones) &^ (x7 + (0x7f-uint64(hi))*ones) &^ x & High
}

// Equal classifies the bytes equal to c, for c < 0x80.
func Equal(x uint64, c byte) uint64 {
	y := x ^ uint64(c)*ones // zero bytes where equal
	nonZero := (y&^High + 0x7f*ones) | y
	return ^nonZero & High
}

// Word classifies ASCII letters, digits and '_'. It is InRange and Equal
// written out, so that it is cheap enough to inline.
func Word(x uint64) uint64 {
	x7 := x &^ High
	l := x7 | 0x20*ones // the lower case of each letter
	letter := (l + (0x80-'a')*ones) &^ (l + (0x7f-'z')*ones)
	digit := (x7 + (0x80-'0')*ones) &^ (x7 + (0x7f-'9')*ones)
	notUnder := (x7 ^ '_'*ones) + 0x7f*ones
	return (letter | digit | ^notUnder) &^ x & High
}
