package cache

import (
	"errors"
	"log/slog"
	"os"
	"testing"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// TestReadAtCutBody: a body file cut short behind the cache's back read
// short at every request, and the entry went on claiming the lost bytes.
// Now the first short read drops them from the entry and the index (and
// says so once), so they read as a gap to fetch again.
func TestReadAtCutBody(t *testing.T) {
	dir := t.TempDir()
	rec := newRecorder(t)
	s := openStore(t, dir, Options{Logger: slog.New(rec)})
	const size, cut = 3 * BlockSize, BlockSize + 12345
	e := mustCreate(t, s, "k", Meta{Size: size})
	writeRange(t, e, 4, rangeutil.Range{Start: 0, End: size})
	if err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(s.bodyPath(e.id), cut); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 4096)
	n, err := e.ReadAt(p, 2*BlockSize)
	if n != 0 || !errors.Is(err, ErrBodyCut) {
		t.Errorf("ReadAt(4096, %d) of a file cut at %d = %d, %v, want 0, ErrBodyCut", 2*BlockSize, cut, n, err)
	}
	want := set([2]int64{0, cut})
	if got := e.Meta().Ranges; !got.Equal(want) {
		t.Errorf("Ranges after the short read = %v, want %v", got, want)
	}
	if got := readable(e, cut); got != 0 {
		t.Errorf("readable(%d) after the short read = %d, want 0 (a gap)", cut, got)
	}
	n, err = e.ReadAt(p, cut-100) // a reader that saw the old ranges
	if n != 100 || !errors.Is(err, ErrBodyCut) {
		t.Errorf("ReadAt(4096, %d) = %d, %v, want 100, ErrBodyCut", cut-100, n, err)
	}
	checkRange(t, e, 4, rangeutil.Range{Start: 0, End: cut})
	rec.mu.Lock()
	logged := rec.counts["cache: body file cut short; dropping the bytes it lost, to fetch them again"]
	rec.mu.Unlock()
	if got := logged; got != 1 {
		t.Errorf("logged the cut %d times, want once", got)
	}
	writeRange(t, e, 4, rangeutil.Range{Start: cut, End: size}) // fetched again
	e.Release()
	mustClose(t, s)

	s = openStore(t, dir, Options{})
	defer mustClose(t, s)
	g := mustGet(t, s, "k")
	defer g.Release()
	if m := g.Meta(); !m.Complete() {
		t.Errorf("after refilling and reopening, Ranges = %v, want all %d bytes", m.Ranges, size)
	}
	checkRange(t, g, 4, rangeutil.Range{Start: 0, End: size})
}
