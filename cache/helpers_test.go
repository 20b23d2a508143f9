package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// content returns the n body bytes at off of the version marked salt: byte
// x is a function of x (and the version), so any slice can be checked
// without keeping the file. 251 is prime, so the pattern never lines up with
// power-of-two chunk or block sizes.
func content(salt byte, off int64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((off+int64(i))%251) ^ salt
	}
	return b
}

// testHandler fails the test on every record at level Error or above: the
// store logs only failures it cannot return to a caller.
type testHandler struct {
	t testing.TB
	slog.Handler
}

func (h testHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.t.Errorf("unexpected error log: %s", r.Message)
	}
	return h.Handler.Handle(ctx, r)
}

func (h testHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return testHandler{h.t, h.Handler.WithAttrs(as)}
}

func (h testHandler) WithGroup(name string) slog.Handler {
	return testHandler{h.t, h.Handler.WithGroup(name)}
}

// testOptions returns Options whose logger writes to the test output and
// fails the test on error records.
func testOptions(t testing.TB) Options {
	return Options{Logger: slog.New(testHandler{t, slog.NewTextHandler(t.Output(), nil)})}
}

// openStore opens dir or fails the test; the caller closes the store.
func openStore(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testOptions(t).Logger
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s) error: %v", dir, err)
	}
	return s
}

// newStore opens a store in a fresh directory, closed when the test ends.
func newStore(t testing.TB, opts Options) *Store {
	t.Helper()
	s := openStore(t, t.TempDir(), opts)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	})
	return s
}

func mustClose(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
}

func mustCreate(t testing.TB, s *Store, key string, m Meta) *Entry {
	t.Helper()
	e, err := s.Create(key, m)
	if err != nil {
		t.Fatalf("Create(%q) error: %v", key, err)
	}
	return e
}

func mustGet(t testing.TB, s *Store, key string) *Entry {
	t.Helper()
	e, err := s.Get(key)
	if err != nil {
		t.Fatalf("Get(%q) error: %v", key, err)
	}
	if e == nil {
		t.Fatalf("Get(%q) = nil, want an entry", key)
	}
	return e
}

// writeRange writes the bytes of r (version salt) to e.
func writeRange(t testing.TB, e *Entry, salt byte, r rangeutil.Range) {
	t.Helper()
	p := content(salt, r.Start, int(r.Len()))
	if n, err := e.WriteAt(p, r.Start); n != len(p) || err != nil {
		t.Fatalf("WriteAt(%d bytes, %d) = %d, %v, want %d, nil", len(p), r.Start, n, err, len(p))
	}
}

// checkRange reads r from e and compares it with content(salt, ...).
func checkRange(t testing.TB, e *Entry, salt byte, r rangeutil.Range) {
	t.Helper()
	got := make([]byte, r.Len())
	if n, err := e.ReadAt(got, r.Start); n != len(got) || err != nil {
		t.Fatalf("ReadAt(%d bytes, %d) = %d, %v, want %d, nil", len(got), r.Start, n, err, len(got))
	}
	if want := content(salt, r.Start, len(got)); !bytes.Equal(got, want) {
		i := 0
		for got[i] == want[i] {
			i++
		}
		t.Fatalf("ReadAt(%d bytes, %d): byte %d = %#x, want %#x", len(got), r.Start, r.Start+int64(i), got[i], want[i])
	}
}

// set builds a rangeutil.Set from half-open pairs.
func set(pairs ...[2]int64) rangeutil.Set {
	var s rangeutil.Set
	for _, p := range pairs {
		s.Insert(rangeutil.Range{Start: p[0], End: p[1]})
	}
	return s
}

// closed reports, without blocking, whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func exists(t testing.TB, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(%s): %v", path, err)
	}
	return err == nil
}

// copyDir copies the tree src to dst the way a crash leaves it: the files'
// current contents, with no close or flush by their owner. Holes stay
// holes, because Badger preallocates its value log (128 MiB) and memtable
// files sparse and a dense copy would be slow.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm())
		}
		return copySparse(path, target, info)
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

func copySparse(src, dst string, info fs.FileInfo) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, info.Mode().Perm())
	if err != nil {
		return err
	}
	size := info.Size()
	for off := int64(0); off < size; {
		start, end := nextData(in, off, size)
		if start >= end {
			break
		}
		if _, err := io.Copy(io.NewOffsetWriter(out, start), io.NewSectionReader(in, start, end-start)); err != nil {
			out.Close()
			return err
		}
		off = end
	}
	if err := out.Truncate(size); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Linux lseek whence values (SEEK_DATA, SEEK_HOLE); other systems number
// them differently, so they are used on Linux only.
const seekData, seekHole = 3, 4

// nextData returns the first run of data [start, end) of f at or after
// off, skipping holes where the system can tell them; start ≥ end when only
// a hole is left.
func nextData(f *os.File, off, size int64) (start, end int64) {
	if runtime.GOOS != "linux" {
		return off, size
	}
	start, err := f.Seek(off, seekData)
	if errors.Is(err, syscall.ENXIO) {
		return size, size
	}
	if err != nil {
		return off, size
	}
	end, err = f.Seek(start, seekHole)
	if err != nil {
		return start, size
	}
	return start, min(end, size)
}

// waitFor polls cond under e's lock until it holds. It stands in for a
// signal the package does not offer; it never sleeps.
func waitFor(e *Entry, cond func() bool) {
	for {
		e.mu.Lock()
		ok := cond()
		e.mu.Unlock()
		if ok {
			return
		}
		runtime.Gosched()
	}
}

// waitBackground waits until no background checkpoint (started by WriteAt)
// runs on e and e's references are down to refs, those the test holds: the
// checkpoint goroutine holds one until it ends.
func waitBackground(e *Entry, refs int) {
	for {
		e.store.mu.Lock()
		e.mu.Lock()
		idle := !e.checkpointing && e.refs == refs
		e.mu.Unlock()
		e.store.mu.Unlock()
		if idle {
			return
		}
		runtime.Gosched()
	}
}

// readable is what a reader may serve at off, as proxy's entry body finds
// it: the present bytes of off's block once the block passed VerifyBlock
// (0 for a corrupt block, which is dropped).
func readable(e *Entry, off int64) int64 {
	n := e.Present(off)
	if n > 0 && errors.Is(e.VerifyBlock(off), ErrCorrupt) {
		return 0
	}
	return n
}
