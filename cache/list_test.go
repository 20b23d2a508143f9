package cache

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// fillEntry stores a version of key of size bytes (-1: unknown) with the
// bytes of r written and checkpointed, and releases it.
func fillEntry(t *testing.T, s *Store, key string, size int64, r rangeutil.Range) uint64 {
	t.Helper()
	e := mustCreate(t, s, key, Meta{Size: size})
	defer e.Release()
	if !r.Empty() {
		writeRange(t, e, 0, r)
	}
	if err := e.Checkpoint(); err != nil {
		t.Fatalf("Checkpoint(%s) = %v", key, err)
	}
	return e.Meta().ID
}

// listAll returns every Info that List gives.
func listAll(t *testing.T, s *Store) []Info {
	t.Helper()
	var got []Info
	if err := s.List(func(i Info) bool { got = append(got, i); return true }); err != nil {
		t.Fatalf("List() = %v", err)
	}
	return got
}

func TestList(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := newStore(t, Options{Now: clock})
	long := "http://h/" + strings.Repeat("x", maxIndexKey)
	fillEntry(t, s, "http://a/complete", 100, rangeutil.Range{Start: 0, End: 100})
	fillEntry(t, s, long, 10, rangeutil.Range{Start: 0, End: 10})
	now = now.Add(time.Hour)
	fillEntry(t, s, "http://a/partial", 100, rangeutil.Range{Start: 20, End: 80})
	fillEntry(t, s, "http://b/unknown", -1, rangeutil.Range{Start: 0, End: 5})
	now = now.Add(time.Hour)
	mustGet(t, s, "http://a/complete").Release() // a lookup not yet persisted counts
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	want := []Info{
		{Key: "http://a/complete", Size: 100, Stored: 100, Complete: true, LastUse: t0.Add(2 * time.Hour)},
		{Key: "http://a/partial", Size: 100, Stored: 60, LastUse: t0.Add(time.Hour)},
		{Key: "http://b/unknown", Size: -1, Stored: 5, LastUse: t0.Add(time.Hour)},
		{Key: long, Hashed: true, Size: 10, Stored: 10, Complete: true, LastUse: t0},
	}
	got := listAll(t, s)
	if len(got) != len(want) {
		t.Fatalf("List() gave %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !got[i].LastUse.Equal(want[i].LastUse) {
			t.Errorf("List()[%d].LastUse = %v, want %v", i, got[i].LastUse, want[i].LastUse)
		}
		got[i].LastUse = want[i].LastUse
		if want[i].Size >= 0 {
			wantRanges := rangeutil.Set{}
			if i == 1 {
				wantRanges.Insert(rangeutil.Range{Start: 20, End: 80})
			} else {
				wantRanges.Insert(rangeutil.Range{Start: 0, End: want[i].Stored})
			}
			if !got[i].Ranges.Equal(wantRanges) {
				t.Errorf("List()[%d].Ranges = %v, want %v", i, got[i].Ranges, wantRanges)
			}
		}
		got[i].Ranges = rangeutil.Set{}
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("List()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	n := 0
	if err := s.List(func(Info) bool { n++; return false }); err != nil || n != 1 {
		t.Errorf("List(stop at once) = %v after %d calls, want nil after 1", err, n)
	}
}

// TestPurge: a purged version leaves nothing behind: no record, range set,
// block sums or body file, and nothing counted in used.
func TestPurge(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	id := fillEntry(t, s, "http://a/x", 100, rangeutil.Range{Start: 0, End: 100})
	fillEntry(t, s, "http://a/y", 100, rangeutil.Range{Start: 0, End: 50})
	path := s.bodyPath(id)
	ok, err := s.Purge("http://a/x")
	if !ok || err != nil {
		t.Fatalf("Purge(http://a/x) = %v, %v, want true, nil", ok, err)
	}
	if exists(t, path) {
		t.Errorf("body file %s exists after Purge, want removed", path)
	}
	if m, err := s.load("http://a/x"); m != nil || err != nil {
		t.Errorf("load(http://a/x) after Purge = %+v, %v, want nil, nil", m, err)
	}
	if sums, err := s.loadSums(id, 100); len(sums) != 0 || err != nil {
		t.Errorf("loadSums after Purge = %v, %v, want none", sums, err)
	}
	if got := listAll(t, s); len(got) != 1 || got[0].Key != "http://a/y" {
		t.Errorf("List() after Purge = %+v, want http://a/y alone", got)
	}
	if ok, err := s.Purge("http://a/x"); ok || err != nil {
		t.Errorf("Purge(http://a/x) again = %v, %v, want false, nil", ok, err)
	}
	if ok, err := s.Purge("http://a/y"); !ok || err != nil {
		t.Errorf("Purge(http://a/y) = %v, %v, want true, nil", ok, err)
	}
	s.commitMu.Lock()
	used := s.used
	s.commitMu.Unlock()
	if used != 0 {
		t.Errorf("used after purging everything = %d, want 0", used)
	}
	if u := s.Usage(); u.Purged != 2 || u.Used != 0 || u.EvictedSize+u.EvictedTTL != 0 {
		t.Errorf("Usage() after two purges = %+v, want Purged 2, nothing else", u)
	}
	mustClose(t, s)
	s = openStore(t, dir, Options{})
	defer mustClose(t, s)
	if got := listAll(t, s); len(got) != 0 {
		t.Errorf("List() after Purge and reopen = %+v, want nothing", got)
	}
}

// TestPurgeInUse: a version purged while a reader holds it and a writer
// writes it is obsolete: the reader finishes from the file, the writer's
// checkpoint claims nothing, and the file goes at the last Release.
func TestPurgeInUse(t *testing.T) {
	s := newStore(t, Options{})
	e := mustCreate(t, s, "k", Meta{Size: 100})
	writeRange(t, e, 0, rangeutil.Range{Start: 0, End: 60})
	if err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	reader := mustGet(t, s, "k")
	path := s.bodyPath(e.Meta().ID)
	if ok, err := s.Purge("k"); !ok || err != nil {
		t.Fatalf("Purge(k) = %v, %v, want true, nil", ok, err)
	}
	if !e.Obsolete() {
		t.Errorf("Obsolete() after Purge = false, want true")
	}
	if err := e.Checkpoint(); err != nil {
		t.Errorf("Checkpoint() after Purge = %v, want nil (nothing to commit)", err)
	}
	if m, err := s.load("k"); m != nil || err != nil {
		t.Errorf("load(k) after Purge and a checkpoint = %+v, %v, want nil, nil", m, err)
	}
	if g, err := s.Get("k"); g != nil || err != nil {
		t.Errorf("Get(k) after Purge = %v, %v, want nil, nil", g, err)
	}
	checkRange(t, reader, 0, rangeutil.Range{Start: 0, End: 60})
	e.Release()
	if !exists(t, path) {
		t.Fatalf("body file %s gone while a reader holds the purged version", path)
	}
	reader.Release()
	if exists(t, path) {
		t.Errorf("body file %s exists after the last Release of a purged version, want removed", path)
	}
}

// TestPurgeKeepsNewerVersion: a version created after a purge is the
// key's, whatever the purged one's holders do.
func TestPurgeKeepsNewerVersion(t *testing.T) {
	s := newStore(t, Options{})
	v1 := mustCreate(t, s, "k", Meta{Size: 10})
	if _, err := s.Purge("k"); err != nil {
		t.Fatal(err)
	}
	v2 := mustCreate(t, s, "k", Meta{Size: 10})
	defer v2.Release()
	v1.Drop()
	v1.Release()
	checkIndex(t, s, "k", v2.Meta().ID, rangeutil.Set{})
}

func TestPurgePrefix(t *testing.T) {
	s := newStore(t, Options{})
	long := "http://a/" + strings.Repeat("x", maxIndexKey)
	for _, k := range []string{"http://a/1", "http://a/2", "http://ab/3", "http://b/4", long} {
		fillEntry(t, s, k, 10, rangeutil.Range{Start: 0, End: 10})
	}
	got, err := s.PurgePrefix("http://a/")
	if want := []string{"http://a/1", "http://a/2", long}; err != nil || !slices.Equal(got, want) {
		t.Errorf("PurgePrefix(http://a/) = %q, %v, want %q, nil", got, err, want)
	}
	var left []string
	for _, i := range listAll(t, s) {
		left = append(left, i.Key)
	}
	if want := []string{"http://ab/3", "http://b/4"}; !slices.Equal(left, want) {
		t.Errorf("List() after PurgePrefix = %q, want %q", left, want)
	}
	if got, err := s.PurgePrefix("http://c/"); len(got) != 0 || err != nil {
		t.Errorf("PurgePrefix(http://c/) = %q, %v, want none", got, err)
	}
}
