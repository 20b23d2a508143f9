package cache

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// fakeClock is an Options.Now that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// store creates key with a body of size bytes (-1: unknown), writes and
// checkpoints the first present of them, releases it and returns its
// body file ID.
func store(t *testing.T, s *Store, key string, size, present int64) uint64 {
	t.Helper()
	e := mustCreate(t, s, key, Meta{Size: size})
	if present > 0 {
		writeRange(t, e, 0, rangeutil.Range{Start: 0, End: present})
	}
	if err := e.Checkpoint(); err != nil {
		t.Fatalf("Checkpoint(%q) = %v, want nil", key, err)
	}
	e.Release()
	return e.id
}

// access looks key up and releases it at once, as a cache hit does.
func access(t *testing.T, s *Store, key string) {
	t.Helper()
	mustGet(t, s, key).Release()
}

// checkStored fails unless each key is in the index with its body file
// (want true) or neither (want false).
func checkStored(t *testing.T, s *Store, ids map[string]uint64, want map[string]bool) {
	t.Helper()
	for key, w := range want {
		m, err := s.load(key)
		if err != nil {
			t.Fatalf("load(%q) error: %v", key, err)
		}
		file := exists(t, s.bodyPath(ids[key]))
		if (m != nil) != w || file != w {
			t.Errorf("%q: in index %v, body file %v, want %v and %v", key, m != nil, file, w, w)
		}
	}
}

// usedOf returns the store's running total.
func usedOf(s *Store) int64 {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	return s.used
}

// scanUsed sums the bytes the index claims, from scratch.
func scanUsed(t *testing.T, s *Store) int64 {
	t.Helper()
	var sum int64
	err := s.eachRecord(func(key string, m *Meta, derr error) {
		if derr != nil {
			t.Errorf("index record %q: %v", key, derr)
		}
		sum += m.Ranges.Covered()
	})
	if err != nil {
		t.Fatalf("eachRecord() error: %v", err)
	}
	return sum
}

// TestAccessedPersisted: a Get sets Accessed in memory at once; the index
// gets it at the next flush (every minute, every pass, Close), not at the
// Get; a later checkpoint of an older snapshot never moves it back; it
// survives a reopen.
func TestAccessedPersisted(t *testing.T) {
	clock := newClock()
	dir := t.TempDir()
	s := openStore(t, dir, Options{Now: clock.Now})
	created := clock.Now()
	store(t, s, "k", 100, 50)
	clock.Advance(time.Hour)
	e := mustGet(t, s, "k")
	got1 := clock.Now()
	if a := e.Meta().Accessed; !a.Equal(got1) {
		t.Errorf("Meta().Accessed after Get = %v, want %v", a, got1)
	}
	if m := mustLoad(t, s, "k"); !m.Accessed.Equal(created) {
		t.Errorf("index Accessed right after Get = %v, want %v (no write per Get)", m.Accessed, created)
	}
	flush(t, s)
	if m := mustLoad(t, s, "k"); !m.Accessed.Equal(got1) {
		t.Errorf("index Accessed after a flush = %v, want %v", m.Accessed, got1)
	}

	// A checkpoint whose snapshot predates a Get that a pass has already
	// persisted; simulated by moving the live Accessed back.
	clock.Advance(time.Hour)
	access(t, s, "k") // e is still held: the same live entry
	got2 := clock.Now()
	flush(t, s)
	e.mu.Lock()
	e.meta.Accessed = got1
	e.mu.Unlock()
	writeRange(t, e, 0, rangeutil.Range{Start: 50, End: 60})
	if err := e.Checkpoint(); err != nil {
		t.Fatalf("Checkpoint() = %v, want nil", err)
	}
	if m := mustLoad(t, s, "k"); !m.Accessed.Equal(got2) || !m.Ranges.Equal(set([2]int64{0, 60})) {
		t.Errorf("index Accessed, Ranges after an older snapshot's checkpoint = %v, %v, want %v, [0,60)", m.Accessed, m.Ranges, got2)
	}
	e.Release()

	clock.Advance(time.Hour)
	access(t, s, "k")
	got3 := clock.Now()
	mustClose(t, s) // persists what no pass did
	s = openStore(t, dir, Options{Now: clock.Now})
	defer mustClose(t, s)
	if m := mustLoad(t, s, "k"); !m.Accessed.Equal(got3) || !m.Created.Equal(created) {
		t.Errorf("after reopen, index Accessed, Created = %v, %v, want %v, %v", m.Accessed, m.Created, got3, created)
	}
}

func flush(t *testing.T, s *Store) {
	t.Helper()
	if err := s.flushTouches(); err != nil {
		t.Fatalf("flushTouches() = %v, want nil", err)
	}
}

func mustLoad(t *testing.T, s *Store, key string) *Meta {
	t.Helper()
	m, err := s.load(key)
	if err != nil || m == nil {
		t.Fatalf("load(%q) = %v, %v, want metadata", key, m, err)
	}
	return m
}

// TestOpenRemovesStrays: at Open, body files that no record names are
// removed (here: a version replaced while held, then a crash), records
// whose body file is gone are dropped, and what is referenced, or not
// named like a body file, stays.
func TestOpenRemovesStrays(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	ids := map[string]uint64{
		"kept":    store(t, s, "kept", 100, 100),
		"nofile":  store(t, s, "nofile", 100, 40),
		"partial": store(t, s, "partial", 100, 30),
	}
	old := mustGet(t, s, "kept")
	oldName := bodyName(old.id)
	renewed := mustCreate(t, s, "kept", Meta{Size: 100}) // old is obsolete, but held
	writeRange(t, renewed, 1, rangeutil.Range{Start: 0, End: 70})
	if err := renewed.Checkpoint(); err != nil {
		t.Fatalf("Checkpoint() = %v, want nil", err)
	}
	ids["kept"] = renewed.id
	if err := os.Remove(s.bodyPath(ids["nofile"])); err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(t.TempDir(), "crashed")
	copyDir(t, dir, crashed) // a kill -9 now: old's holder never releases it
	renewed.Release()
	old.Release()
	mustClose(t, s)

	data := filepath.Join(crashed, "data")
	oldCopy := filepath.Join(data, oldName[:2], oldName)
	stray := filepath.Join(data, "ab", bodyName(0xab00000000000001))
	notBodies := []string{
		filepath.Join(data, "README"),
		filepath.Join(data, "ab", "notes.txt"),
		filepath.Join(data, "cd", bodyName(0xab00000000000003)), // wrong directory
		filepath.Join(data, "ab", strings.ToUpper(bodyName(0xab0000000000000f))),
	}
	for _, p := range append(notBodies, stray) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !exists(t, oldCopy) {
		t.Fatalf("crash copy lacks the held old version's body file %s", oldCopy)
	}

	c := openStore(t, crashed, Options{})
	defer mustClose(t, c)
	for _, p := range []string{stray, oldCopy} {
		if exists(t, p) {
			t.Errorf("after Open, orphan body file %s exists, want removed", p)
		}
	}
	for _, p := range notBodies {
		if !exists(t, p) {
			t.Errorf("after Open, %s (not a body file) is gone, want left alone", p)
		}
	}
	checkStored(t, c, ids, map[string]bool{"kept": true, "nofile": false, "partial": true})
	if got, want := usedOf(c), int64(70+30); got != want {
		t.Errorf("used after Open = %d, want %d (kept's 70 + partial's 30)", got, want)
	}
	g := mustGet(t, c, "kept")
	defer g.Release()
	checkRange(t, g, 1, rangeutil.Range{Start: 0, End: 70})
}

// TestUsedMatchesScan: the running total equals a fresh sum over the
// index after every step of a random mix of creates (new versions of held
// and released keys), lookups, writes, checkpoints, drops and releases, and
// after a reopen.
func TestUsedMatchesScan(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	var held []*Entry
	key := func() string { return fmt.Sprintf("k%d", rng.IntN(6)) }
	for step := range 500 {
		var what string
		op := rng.IntN(7)
		if len(held) == 0 && op >= 2 && op <= 6 {
			op = 0
		}
		var (
			i int
			e *Entry
		)
		if len(held) > 0 {
			i = rng.IntN(len(held))
			e = held[i] // one reference; the same entry may be held more than once
		}
		switch op {
		case 0:
			k := key()
			what = "Create " + k
			held = append(held, mustCreate(t, s, k, Meta{Size: 1000}))
		case 1:
			k := key()
			what = "Get " + k
			if g, err := s.Get(k); err != nil {
				t.Fatalf("Get(%q) error: %v", k, err)
			} else if g != nil {
				held = append(held, g)
			}
		case 2, 3:
			start := rng.Int64N(1000)
			r := rangeutil.Range{Start: start, End: min(1000, start+rng.Int64N(300)+1)}
			what = fmt.Sprintf("WriteAt %s %v", e.key, r)
			_, _ = e.WriteAt(content(0, r.Start, int(r.Len())), r.Start) // ErrObsolete for a replaced version
		case 4:
			what = "Checkpoint " + e.key
			if err := e.Checkpoint(); err != nil {
				t.Fatalf("Checkpoint(%q) = %v", e.key, err)
			}
		case 5:
			what = "Drop " + e.key
			e.Drop()
		default:
			what = "Release " + e.key
			e.Release()
			held = slices.Delete(held, i, i+1)
		}
		if got, want := usedOf(s), scanUsed(t, s); got != want {
			t.Fatalf("step %d (%s): used = %d, scan of the index = %d", step, what, got, want)
		}
	}
	for _, e := range held {
		e.Release()
	}
	want := scanUsed(t, s)
	if got := usedOf(s); got != want {
		t.Fatalf("after releasing all: used = %d, scan = %d", got, want)
	}
	mustClose(t, s)
	s = openStore(t, dir, Options{})
	defer mustClose(t, s)
	if got := usedOf(s); got != want {
		t.Errorf("after reopen: used = %d, want %d", got, want)
	}
}
