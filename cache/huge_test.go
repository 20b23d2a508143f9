package cache

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// TestHugeDeclaredSizeIsSparse: the bookkeeping of an entry followed its
// declared size (make([]bool, numBlocks(size))): 2^62 bytes declared cost
// 4 TiB of memory at the first read (fatal error: out of memory), and near
// 2^63 the block count overflowed. Memory must follow the bytes written.
func TestHugeDeclaredSizeIsSparse(t *testing.T) {
	for _, size := range []int64{1 << 55, 1 << 62, math.MaxInt64} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{manual: true, MaxObjectSize: math.MaxInt64}
			s := openStore(t, dir, opts)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			e := mustCreate(t, s, "http://example.test/huge", Meta{Size: size})
			written := rangeutil.Range{Start: 0, End: 2*BlockSize + 100}
			writeRange(t, e, 7, written)
			if err := e.Checkpoint(); err != nil {
				t.Fatalf("Checkpoint() = %v", err)
			}
			for _, off := range []int64{0, BlockSize, 2 * BlockSize} {
				if got, want := readable(e, off), written.End-off; got != min(want, BlockSize) {
					t.Errorf("readable(%d) = %d, want %d", off, got, min(want, BlockSize))
				}
			}
			if got := readable(e, written.End); got != 0 {
				t.Errorf("readable(%d) = %d, want 0", written.End, got)
			}
			e.Release()
			mustClose(t, s)
			s = openStore(t, dir, opts)
			defer mustClose(t, s)
			rep, err := s.Verify(func(string, int64) {})
			if err != nil || rep.Blocks != 2 || rep.Bad != 0 {
				t.Errorf("Verify() = %+v, %v, want 2 blocks checked, none bad", rep, err)
			}
			g := mustGet(t, s, "http://example.test/huge")
			checkRange(t, g, 7, rangeutil.Range{Start: 0, End: readable(g, 0)})
			g.Release()
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
				t.Errorf("an entry of declared size %d with %d bytes written allocated %d MiB, want < 64 MiB", size, written.End, grew>>20)
			}
		})
	}
}

func TestBlockArithmetic(t *testing.T) {
	const max = math.MaxInt64
	nb := []struct{ size, want int64 }{
		{-1, 0}, {0, 0}, {1, 1}, {BlockSize, 1}, {BlockSize + 1, 2},
		{1 << 62, 1 << 42}, {max, 1 << 43},
	}
	for _, tt := range nb {
		if got := numBlocks(tt.size); got != tt.want {
			t.Errorf("numBlocks(%d) = %d, want %d", tt.size, got, tt.want)
		}
	}
	br := []struct {
		b, size int64
		want    rangeutil.Range
	}{
		{0, 10, rangeutil.Range{Start: 0, End: 10}},
		{0, BlockSize + 1, rangeutil.Range{Start: 0, End: BlockSize}},
		{1, BlockSize + 1, rangeutil.Range{Start: BlockSize, End: BlockSize + 1}},
		{1<<43 - 1, max, rangeutil.Range{Start: max - BlockSize + 1, End: max}},
		{1<<42 - 1, 1 << 62, rangeutil.Range{Start: 1<<62 - BlockSize, End: 1 << 62}},
	}
	for _, tt := range br {
		if got := blockRange(tt.b, tt.size); got != tt.want {
			t.Errorf("blockRange(%d, %d) = %v, want %v", tt.b, tt.size, got, tt.want)
		}
	}
	cb := completeBlocks(set([2]int64{max - 2*BlockSize, max}), max)
	if want := []int64{1<<43 - 2, 1<<43 - 1}; !slices.Equal(cb, want) {
		t.Errorf("completeBlocks(the last 2 MiB of %d) = %v, want %v", int64(max), cb, want)
	}
}

// TestCreateTooLarge: a version over MaxObjectSize is refused before a
// body file exists, with ErrTooLarge so the proxy relays it.
func TestCreateTooLarge(t *testing.T) {
	s := newStore(t, Options{MaxObjectSize: 1000})
	for _, size := range []int64{1001, 1 << 62, math.MaxInt64} {
		if e, err := s.Create("k", Meta{Size: size}); e != nil || !errors.Is(err, ErrTooLarge) {
			t.Errorf("Create(size %d) over MaxObjectSize 1000 = %v, %v, want nil, ErrTooLarge", size, e, err)
		}
	}
	if files, err := s.bodyFiles(); err != nil || len(files) != 0 {
		t.Errorf("body files after refused creates = %v, %v, want none", files, err)
	}
	for _, size := range []int64{-1, 0, 1000} {
		mustCreate(t, s, "k", Meta{Size: size}).Release()
	}
}

// TestWriteBeyondSize: a write past the declared size (or past the largest
// offset) is refused: the index would claim bytes past the end.
func TestWriteBeyondSize(t *testing.T) {
	s := newStore(t, Options{})
	e := mustCreate(t, s, "k", Meta{Size: 10})
	defer e.Release()
	u := mustCreate(t, s, "u", Meta{Size: -1})
	defer u.Release()
	tests := []struct {
		e   *Entry
		off int64
		n   int
	}{
		{e, 5, 6}, {e, 10, 1}, {e, -1, 1}, {u, math.MaxInt64 - 1, 2}, {u, -5, 1},
	}
	for _, tt := range tests {
		if n, err := tt.e.WriteAt(make([]byte, tt.n), tt.off); n != 0 || err == nil {
			t.Errorf("WriteAt(%d bytes, %d) to size %d = %d, %v, want 0 and an error", tt.n, tt.off, tt.e.Meta().Size, n, err)
		}
	}
	writeRange(t, e, 1, rangeutil.Range{Start: 0, End: 10})
}
