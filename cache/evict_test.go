package cache

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
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

// manualStore opens a store in a fresh directory with no maintenance
// goroutine, limit maxSize and clock c; the test runs passes itself.
func manualStore(t *testing.T, maxSize int64, c *fakeClock) *Store {
	t.Helper()
	return newStore(t, Options{MaxSize: maxSize, Now: c.Now, manual: true})
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

// pass runs an eviction pass and returns how many versions it evicted.
func pass(t *testing.T, s *Store) int {
	t.Helper()
	n, _, err := s.evictPass()
	if err != nil {
		t.Fatalf("evictPass() error: %v", err)
	}
	return n
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

// scanUsed sums the footprints of the versions in the index (the bytes
// they claim and their records), from scratch.
func scanUsed(t *testing.T, s *Store) int64 {
	t.Helper()
	var sum int64
	err := s.eachRecord(func(key string, v version) {
		if v.derr != nil {
			t.Errorf("index record %q: %v", key, v.derr)
		}
		sum += v.footprint()
	})
	if err != nil {
		t.Fatalf("eachRecord() error: %v", err)
	}
	return sum
}

func TestAutoMaxSize(t *testing.T) {
	for _, c := range []struct{ fs, want int64 }{
		{0, 1 << 30}, // not measured
		{1 << 30, 1 << 30},
		{4 << 30, 1 << 30},
		{8 << 30, 2 << 30},
		{400 << 30, 100 << 30},
		{401 << 30, 100 << 30},
		{1 << 50, 100 << 30},
	} {
		if got := autoMaxSize(c.fs); got != c.want {
			t.Errorf("autoMaxSize(%d) = %d, want %d", c.fs, got, c.want)
		}
	}
}

// TestOpenAutoMaxSize: MaxSize zero takes a quarter of the filesystem the
// cache is on, within the bounds; an explicit one is kept.
func TestOpenAutoMaxSize(t *testing.T) {
	dir := t.TempDir()
	fs, err := fsSize(dir)
	if err != nil || fs <= 0 {
		t.Fatalf("fsSize(%s) = %d, %v, want a size", dir, fs, err)
	}
	s := openStore(t, dir, Options{})
	if got, want := s.opts.MaxSize, autoMaxSize(fs); got != want {
		t.Errorf("Open(Options{}).opts.MaxSize = %d, want %d (filesystem of %d bytes)", got, want, fs)
	}
	if s.opts.PartialTTL != DefaultPartialTTL {
		t.Errorf("Open(Options{}).opts.PartialTTL = %v, want %v", s.opts.PartialTTL, DefaultPartialTTL)
	}
	mustClose(t, s)
	s = openStore(t, dir, Options{MaxSize: 12345})
	defer mustClose(t, s)
	if got := s.opts.MaxSize; got != 12345 {
		t.Errorf("Open(Options{MaxSize: 12345}).opts.MaxSize = %d, want 12345", got)
	}
}

func TestVictims(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	cands := []candidate{ // in key order, as the index lists them
		{key: "a", size: 300, lastUse: at(4), complete: true},
		{key: "b", size: 300, lastUse: at(2), complete: true},
		{key: "c", size: 100, lastUse: at(1), complete: false},
		{key: "d", size: 300, lastUse: at(3), complete: false},
		{key: "e", size: 300, lastUse: at(2), complete: true}, // ties with b: key order
	}
	for _, c := range []struct {
		name           string
		used, max, low int64
		cutoff         time.Time
		want           string
	}{
		{"under the limit", 1300, 2000, 1800, at(0), ""},
		{"at the limit", 1300, 1300, 1170, at(0), ""},
		{"over: LRU to low water, complete or partial", 1300, 1200, 700, at(0), "c b e"},
		{"used counts versions not listed (in use)", 2000, 1200, 1000, at(0), "c b e d"},
		{"expired partials first", 1300, 2000, 1800, at(2), "c"},
		{"expired partial made room", 1300, 1250, 1100, at(2), "c"},
		{"expired partials, then LRU", 1300, 800, 700, at(4), "c d b"},
		{"nothing to evict", 0, 0, 0, at(0), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var keys []string
			for _, v := range victims(append([]candidate(nil), cands...), c.used, c.max, c.low, c.cutoff) {
				keys = append(keys, v.key)
			}
			if got := strings.Join(keys, " "); got != c.want {
				t.Errorf("victims(used %d, max %d, low %d, cutoff %v) = %q, want %q",
					c.used, c.max, c.low, c.cutoff.Sub(t0), got, c.want)
			}
		})
	}
}

// TestEvictLRU: over MaxSize, the least recently accessed versions go
// first, complete or partial, down to 90% of the limit; a Get counts as an
// access; the body file goes with the record.
func TestEvictLRU(t *testing.T) {
	// Sizes are in KiB, so that what the records take (a few hundred
	// bytes each, counted too) does not decide the order; the limit has
	// room for them.
	const k = 1 << 10
	clock := newClock()
	s := manualStore(t, 1010*k, clock)
	ids := map[string]uint64{}
	for _, key := range []string{"a", "b", "c"} {
		ids[key] = store(t, s, key, 300*k, 300*k)
		clock.Advance(time.Hour)
	}
	ids["p"] = store(t, s, "p", 900*k, 200*k) // partial: counts its 200 KiB present
	clock.Advance(time.Hour)
	access(t, s, "a") // a is now the most recent
	clock.Advance(time.Hour)

	// 1100 KiB: evict in order b, c, p, a until at most 909 KiB are left.
	if n := pass(t, s); n != 1 {
		t.Errorf("pass at 1100 of 1010 KiB evicted %d versions, want 1 (b)", n)
	}
	checkStored(t, s, ids, map[string]bool{"a": true, "b": false, "c": true, "p": true})
	if got, want := usedOf(s), 800*k+recordBytes(t, s); got != want {
		t.Errorf("used after evicting b = %d, want %d (800 KiB and the records)", got, want)
	}

	ids["d"] = store(t, s, "d", 300*k, 300*k)
	clock.Advance(time.Hour)
	access(t, s, "c")
	// 1100 KiB again: the order is now p, a, d, c.
	if n := pass(t, s); n != 1 {
		t.Errorf("second pass at 1100 of 1010 KiB evicted %d versions, want 1 (p)", n)
	}
	checkStored(t, s, ids, map[string]bool{"a": true, "c": true, "d": true, "p": false})
	want := 900*k + recordBytes(t, s)
	if got, scanned := usedOf(s), scanUsed(t, s); got != want || scanned != want {
		t.Errorf("used, scanned after evicting p = %d, %d, want %d, %d", got, scanned, want, want)
	}
	if n := pass(t, s); n != 0 {
		t.Errorf("pass at 900 of 1010 KiB evicted %d versions, want 0", n)
	}
	if u := s.Usage(); u.EvictedSize != 2 || u.EvictedTTL != 0 || u.Used != want || u.MaxSize != 1010*k {
		t.Errorf("Usage() = %+v, want EvictedSize 2, Used %d, MaxSize %d", u, want, 1010*k)
	}
}

// recordBytes sums what the records of the index take (their keys and
// values), which used counts besides the bytes of the bodies.
func recordBytes(t *testing.T, s *Store) int64 {
	t.Helper()
	var sum int64
	if err := s.eachRecord(func(_ string, v version) { sum += v.bytes }); err != nil {
		t.Fatalf("eachRecord() error: %v", err)
	}
	return sum
}

// TestEvictSkipsInUse: a version someone holds (a reader, a fill) is never
// evicted, however old or large; once released, the next pass takes it.
func TestEvictSkipsInUse(t *testing.T) {
	clock := newClock()
	s := manualStore(t, 1000, clock)
	ids := map[string]uint64{"big": store(t, s, "big", 1500, 1500)}
	clock.Advance(time.Hour)
	ids["p"] = store(t, s, "p", 1000, 10)
	clock.Advance(DefaultPartialTTL + time.Hour) // p has expired too

	reader := mustGet(t, s, "big")
	fill := mustGet(t, s, "p")
	fill.Acquire() // as a fill's goroutine does; the Get's reference goes
	fill.Release()
	if n := pass(t, s); n != 0 {
		t.Errorf("pass with every version held evicted %d, want 0", n)
	}
	checkStored(t, s, ids, map[string]bool{"big": true, "p": true})
	checkRange(t, reader, 0, rangeutil.Range{Start: 0, End: 1500})

	reader.Release()
	fill.Release()
	if n := pass(t, s); n != 1 {
		t.Errorf("pass after the releases evicted %d, want 1 (big, over the limit)", n)
	}
	checkStored(t, s, ids, map[string]bool{"big": false, "p": true})
	clock.Advance(DefaultPartialTTL + time.Second) // the Get above was an access
	if n := pass(t, s); n != 1 {
		t.Errorf("pass once p expired again evicted %d, want 1 (p)", n)
	}
	checkStored(t, s, ids, map[string]bool{"p": false})
}

// TestEvictRechecksInUse: a version held, or looked up and released,
// between the scan that chose it and the deletion is kept: the scan's view
// of it is stale.
func TestEvictRechecksInUse(t *testing.T) {
	clock := newClock()
	s := manualStore(t, 100, clock)
	ids := map[string]uint64{"held": store(t, s, "held", 300, 300), "touched": store(t, s, "touched", 300, 300)}
	cands, err := s.candidates()
	if err != nil || len(cands) != 2 {
		t.Fatalf("candidates() = %v, %v, want both versions", cands, err)
	}
	e := mustGet(t, s, "held")
	defer e.Release()
	access(t, s, "touched")
	if n, _, err := s.evict(cands); n != 0 || err != nil {
		t.Errorf("evict(both) after both were looked up = %d, %v, want 0, nil", n, err)
	}
	checkStored(t, s, ids, map[string]bool{"held": true, "touched": true})
}

// TestPartialTTL: a partial version nobody accessed for PartialTTL goes,
// whatever the size limit; a complete one, or a partial one accessed since,
// stays. A version of unknown size is partial.
func TestPartialTTL(t *testing.T) {
	clock := newClock()
	s := newStore(t, Options{MaxSize: 1 << 30, PartialTTL: 24 * time.Hour, Now: clock.Now, manual: true})
	ids := map[string]uint64{
		"partial":  store(t, s, "partial", 1000, 100),
		"unknown":  store(t, s, "unknown", -1, 100),
		"empty":    store(t, s, "empty", 1000, 0),
		"accessed": store(t, s, "accessed", 1000, 100),
		"complete": store(t, s, "complete", 1000, 1000),
	}
	clock.Advance(24*time.Hour - time.Second)
	access(t, s, "accessed")
	if n := pass(t, s); n != 0 {
		t.Errorf("pass 1s before the TTL evicted %d, want 0", n)
	}
	clock.Advance(2 * time.Second)
	if n := pass(t, s); n != 3 {
		t.Errorf("pass 1s after the TTL evicted %d, want 3", n)
	}
	checkStored(t, s, ids, map[string]bool{"partial": false, "unknown": false, "empty": false, "accessed": true, "complete": true})
	clock.Advance(24 * time.Hour)
	if n := pass(t, s); n != 1 {
		t.Errorf("pass a TTL after the access evicted %d, want 1", n)
	}
	checkStored(t, s, ids, map[string]bool{"accessed": false, "complete": true})
	if u := s.Usage(); u.EvictedTTL != 4 || u.EvictedSize != 0 {
		t.Errorf("Usage() = %+v, want EvictedTTL 4, EvictedSize 0", u)
	}
}

// TestAccessedPersisted: a Get sets Accessed in memory at once; the index
// gets it at the next flush (every minute, every pass, Close), not at the
// Get; a later checkpoint of an older snapshot never moves it back; it
// survives a reopen.
func TestAccessedPersisted(t *testing.T) {
	clock := newClock()
	dir := t.TempDir()
	s := openStore(t, dir, Options{Now: clock.Now, manual: true})
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
	s = openStore(t, dir, Options{Now: clock.Now, manual: true})
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
	s := openStore(t, dir, Options{manual: true})
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

	c := openStore(t, crashed, Options{manual: true})
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
	if got, want := usedOf(c), 70+30+recordBytes(t, c); got != want {
		t.Errorf("used after Open = %d, want %d (kept's 70 + partial's 30, and the records)", got, want)
	}
	g := mustGet(t, c, "kept")
	defer g.Release()
	checkRange(t, g, 1, rangeutil.Range{Start: 0, End: 70})
}

// TestUsedMatchesScan: the running total equals a fresh sum over the
// index after every step of a random mix of creates (new versions of held
// and released keys), lookups, writes, checkpoints, drops, releases and
// eviction passes, and after a reopen.
func TestUsedMatchesScan(t *testing.T) {
	clock := newClock()
	dir := t.TempDir()
	s := openStore(t, dir, Options{MaxSize: 3000, Now: clock.Now, manual: true})
	rng := rand.New(rand.NewPCG(1, 2))
	var held []*Entry
	key := func() string { return fmt.Sprintf("k%d", rng.IntN(6)) }
	for step := range 500 {
		clock.Advance(time.Minute)
		var what string
		op := rng.IntN(8)
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
		case 6:
			what = "Release " + e.key
			e.Release()
			held = slices.Delete(held, i, i+1)
		default:
			what = "evictPass"
			pass(t, s)
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
	s = openStore(t, dir, Options{Now: clock.Now, manual: true})
	defer mustClose(t, s)
	if got := usedOf(s); got != want {
		t.Errorf("after reopen: used = %d, want %d", got, want)
	}
}

// recorder is a slog.Handler that counts records by message, for tests
// that watch the maintenance goroutine, and fails the test on errors.
// Records at Info and above count under "message (info)" as well.
type recorder struct {
	t       testing.TB
	mu      sync.Mutex
	counts  map[string]int
	changed chan struct{} // closed and replaced at every record
}

func newRecorder(t testing.TB) *recorder {
	return &recorder{t: t, counts: map[string]int{}, changed: make(chan struct{})}
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelError {
		r.t.Errorf("unexpected error log: %s", rec.Message)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[rec.Message]++
	if rec.Level >= slog.LevelInfo {
		r.counts[rec.Message+" (info)"]++
	}
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// await waits until msg was logged n times. It waits on the records, not
// on a clock; the bound only turns a hang into a failure.
func (r *recorder) await(msg string, n int) {
	r.t.Helper()
	timeout := time.After(time.Minute)
	for {
		r.mu.Lock()
		got, ch := r.counts[msg], r.changed
		r.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			r.t.Fatalf("%q logged %d times in a minute, want %d", msg, got, n)
		}
	}
}

// goroutines returns the stacks of all goroutines, one per element.
func goroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(string(buf[:n]), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// running reports whether a goroutine's stack contains every one of frags.
// Tests of this package do not run in parallel, so what it finds is the
// test's own.
func running(frags ...string) bool {
	return slices.ContainsFunc(goroutines(), func(g string) bool {
		return !slices.ContainsFunc(frags, func(f string) bool { return !strings.Contains(g, f) })
	})
}

// maintaining reports whether a maintenance goroutine is running.
func maintaining() bool { return running("cache.(*Store).maintain(") }

// TestMaintenanceStopsOnClose runs eviction passes and value-log GC every
// millisecond while entries are written and evicted (for the race
// detector), then checks that Close returns only after the goroutine that
// runs them has exited, and that a second Close does not panic.
func TestMaintenanceStopsOnClose(t *testing.T) {
	if maintaining() {
		t.Fatal("a maintenance goroutine runs before the test opens a store")
	}
	rec := newRecorder(t)
	s := openStore(t, t.TempDir(), Options{MaxSize: 2000, Logger: slog.New(rec), evictEvery: time.Millisecond, gcEvery: time.Millisecond})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 20 {
				store(t, s, fmt.Sprintf("w%d-%d", w, i%5), 500, 500)
			}
		})
	}
	wg.Wait()
	rec.await("cache: value log GC done", 3)
	rec.await("cache: eviction pass", 3)
	if !maintaining() {
		t.Fatal("no maintenance goroutine while the store is open")
	}
	mustClose(t, s)
	if maintaining() {
		t.Error("after Close returned, the maintenance goroutine still runs")
	}
	s.Close() // Badger reports closing twice; the store must not panic
}

// TestCloseWaitsForPass: Close returns only once a pass under way has
// finished, so that nothing touches the index after it is closed. The test
// holds commitMu, which a pass needs, to keep a pass running.
func TestCloseWaitsForPass(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{evictEvery: time.Millisecond, gcEvery: time.Hour})
	s.commitMu.Lock()
	for !running("cache.(*Store).evictPass(") {
		runtime.Gosched()
	}
	done := make(chan error)
	go func() { done <- s.Close() }()
	for !running("cache.(*Store).Close(", "sync.(*WaitGroup).Wait") {
		select {
		case <-done:
			s.commitMu.Unlock()
			t.Fatal("Close returned while an eviction pass was under way")
		default:
			runtime.Gosched()
		}
	}
	s.commitMu.Unlock()
	if err := <-done; err != nil {
		t.Errorf("Close() = %v, want nil", err)
	}
	if maintaining() {
		t.Error("after Close returned, the maintenance goroutine still runs")
	}
}

// TestEvictWhenFull: a commit that takes the index over MaxSize starts a
// pass at once, without waiting for the periodic one.
func TestEvictWhenFull(t *testing.T) {
	rec := newRecorder(t)
	s := newStore(t, Options{MaxSize: 1000, Logger: slog.New(rec), evictEvery: time.Hour, gcEvery: time.Hour})
	ids := map[string]uint64{"old": store(t, s, "old", 600, 600)}
	e := mustCreate(t, s, "new", Meta{Size: 600})
	defer e.Release()
	ids["new"] = e.id
	writeRange(t, e, 0, rangeutil.Range{Start: 0, End: 600})
	if err := e.Checkpoint(); err != nil { // 1200 of 1000 bytes
		t.Fatalf("Checkpoint() = %v, want nil", err)
	}
	rec.await("cache: eviction pass (info)", 1)
	checkStored(t, s, ids, map[string]bool{"old": false, "new": true})
}

// TestEvictAfterLastRelease: a version that holds the cache over MaxSize
// while in use is evicted as soon as its last reference goes, also when
// that is within kickGap of the pass that had to skip it. Regression: 40
// concurrent 20 MB downloads with max_size 100MiB kept 840 MB for a
// minute, because the release asked for no pass and a pass asked for
// within 5 s of the last one was dropped.
func TestEvictAfterLastRelease(t *testing.T) {
	rec := newRecorder(t)
	s := newStore(t, Options{MaxSize: 1000, Logger: slog.New(rec), evictEvery: time.Hour, gcEvery: time.Hour, kickGap: time.Second})
	e := mustCreate(t, s, "a", Meta{Size: 1500})
	id := e.id
	writeRange(t, e, 0, rangeutil.Range{Start: 0, End: 1500})
	if err := e.Checkpoint(); err != nil { // over 1000 bytes, in use
		t.Fatalf("Checkpoint() = %v, want nil", err)
	}
	before := usedOf(s)
	rec.await("cache: eviction pass", 1)
	if got := usedOf(s); got != before {
		t.Fatalf("after a pass with the version in use: used = %d, want %d (nothing evictable)", got, before)
	}
	e.Release() // well within kickGap of that pass
	rec.await("cache: eviction pass (info)", 1)
	checkStored(t, s, map[string]uint64{"a": id}, map[string]bool{"a": false})
}

// BenchmarkEvictPass measures a pass that evicts nothing over an index of
// 10,000 versions with a dozen stored headers each: the cost the periodic
// pass pays every evictInterval.
func BenchmarkEvictPass(b *testing.B) {
	s := newStore(b, Options{MaxSize: 1 << 40, manual: true})
	header := map[string][]string{}
	for i := range 12 {
		header[fmt.Sprintf("X-Header-%d", i)] = []string{strings.Repeat("v", 40)}
	}
	for i := range 10_000 {
		e := mustCreate(b, s, fmt.Sprintf("http://example.com/pool/main/p/pkg%05d.deb", i), Meta{Size: 1 << 20, Header: header})
		e.Release()
	}
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := s.evictPass(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifyIsNotAnAccess: Verify reads every entry, which must not make
// them all look recently used (it would erase the LRU order).
func TestVerifyIsNotAnAccess(t *testing.T) {
	clock := newClock()
	s := manualStore(t, 1<<30, clock)
	store(t, s, "k", 100, 100)
	before := mustLoad(t, s, "k").Accessed
	clock.Advance(time.Hour)
	if _, err := s.Verify(func(string, int64) {}); err != nil {
		t.Fatalf("Verify() error: %v", err)
	}
	flush(t, s)
	if got := mustLoad(t, s, "k").Accessed; !got.Equal(before) {
		t.Errorf("index Accessed after Verify = %v, want %v (unchanged)", got, before)
	}
}
