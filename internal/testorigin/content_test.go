package testorigin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"
)

// bytesOf returns bytes [off, off+n) of version v, computed one Byte at a
// time: the oracle for the block-wise generator.
func bytesOf(v int, off, n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = Byte(v, off+int64(i))
	}
	return b
}

func TestNewReaderMatchesByte(t *testing.T) {
	for _, tc := range []struct {
		v      int
		off, n int64
	}{
		{0, 0, 0}, {0, 0, 1}, {1, 0, 100}, {1, 3, 5}, {2, 7, 9}, {3, 13, 70000},
		{-1, 1 << 33, 4096}, {5, blockSize - 3, blockSize + 11},
	} {
		// A 7-byte buffer forces every unaligned head and tail through fill.
		got, err := io.ReadAll(NewReader(tc.v, tc.off, tc.n))
		if err != nil {
			t.Fatalf("ReadAll(NewReader(%d, %d, %d)) error %v", tc.v, tc.off, tc.n, err)
		}
		small := make([]byte, 0, tc.n)
		r, buf := NewReader(tc.v, tc.off, tc.n), make([]byte, 7)
		for {
			k, err := r.Read(buf)
			small = append(small, buf[:k]...)
			if err == io.EOF {
				break
			}
		}
		want := bytesOf(tc.v, tc.off, tc.n)
		if !bytes.Equal(got, want) || !bytes.Equal(small, want) {
			t.Errorf("NewReader(%d, %d, %d) differs from Byte", tc.v, tc.off, tc.n)
		}
	}
}

func TestContentIsNotPeriodicOrShared(t *testing.T) {
	a := bytesOf(1, 0, 1<<16)
	for _, shift := range []int64{1, 2, 8, 256, 4096, blockSize} {
		if bytes.Equal(a[:1024], bytesOf(1, shift, 1024)) {
			t.Errorf("content of version 1 repeats after %d bytes", shift)
		}
	}
	if bytes.Equal(a[:1024], bytesOf(2, 0, 1024)) {
		t.Errorf("versions 1 and 2 share their first KiB")
	}
}

func TestSum(t *testing.T) {
	for _, tc := range []struct {
		v    int
		size int64
	}{{0, 0}, {1, 1}, {1, 1000}, {2, 3*blockSize + 5}} {
		h := sha256.Sum256(bytesOf(tc.v, 0, tc.size))
		if got, want := Sum(tc.v, tc.size), hex.EncodeToString(h[:]); got != want {
			t.Errorf("Sum(%d, %d) = %s, want %s", tc.v, tc.size, got, want)
		}
	}
	if Sum(1, 1000) == Sum(2, 1000) || Sum(1, 1000) == Sum(1, 1001) {
		t.Errorf("Sum does not depend on both version and size")
	}
	// Pinned so that content stays the same across runs and releases.
	const want = "c18df8fe98b1b6072625d0210436ebdf469c7f0a4952fee706553d2e283dc0b5"
	if got := Sum(1, 1000); got != want {
		t.Errorf("Sum(1, 1000) = %s, want %s", got, want)
	}
}

// BenchmarkNewReader shows that a 256 MiB body costs well under a second.
func BenchmarkNewReader(b *testing.B) {
	buf := make([]byte, blockSize)
	b.SetBytes(blockSize)
	r := NewReader(1, 0, 1<<62)
	for b.Loop() {
		if _, err := r.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}
