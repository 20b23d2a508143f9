package cache

import (
	"fmt"
	"sync"
	"testing"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// TestUpdatePersists: Update commits the new metadata at once, with the
// durable ranges, and it survives a reopen.
func TestUpdatePersists(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	e := mustCreate(t, s, "k", Meta{Size: -1, Header: map[string][]string{"Etag": {`"a"`}}})
	writeRange(t, e, 0, rangeutil.Range{Start: 0, End: 100})
	if err := e.Checkpoint(); err != nil {
		t.Fatalf("Checkpoint() = %v, want nil", err)
	}
	writeRange(t, e, 0, rangeutil.Range{Start: 100, End: 150})
	if err := e.Update(func(m *Meta) {
		m.Size = 150
		m.Header["Cache-Control"] = []string{"max-age=60"}
	}); err != nil {
		t.Fatalf("Update() = %v, want nil", err)
	}
	m, err := s.load("k")
	if err != nil || m == nil {
		t.Fatalf("load(k) = %v, %v, want metadata", m, err)
	}
	if m.Size != 150 || m.Header["Cache-Control"][0] != "max-age=60" || !m.Ranges.Equal(set([2]int64{0, 100})) {
		t.Errorf("index after Update: Size, Cache-Control, Ranges = %d, %v, %v, want 150, [max-age=60], [0,100)",
			m.Size, m.Header["Cache-Control"], m.Ranges)
	}
	if got := e.Meta(); got.Size != 150 || !got.Complete() {
		t.Errorf("Meta() after Update: Size %d, Complete() %v, want 150, true", got.Size, got.Complete())
	}
	e.Release()
	mustClose(t, s)

	s = openStore(t, dir, Options{})
	defer mustClose(t, s)
	g := mustGet(t, s, "k")
	defer g.Release()
	got := g.Meta()
	if got.Size != 150 || !got.Complete() || got.Header["Cache-Control"][0] != "max-age=60" || got.Header["Etag"][0] != `"a"` {
		t.Errorf("after reopen: Size, Complete(), Header = %d, %v, %v, want 150, true, Etag and Cache-Control", got.Size, got.Complete(), got.Header)
	}
}

// TestUpdateRacesCheckpoint runs Update while a Checkpoint is between its
// snapshot and its commit (it waits for the snapshot, then Update runs
// while the checkpoint syncs the file and commits, which takes
// milliseconds; the wait polls state, it does not sleep, and holds no lock a
// fixed Update might need). Once both are done and the entry is
// checkpointed again, the index must hold Update's metadata and every
// checkpointed byte.
//
// Regression: Update and Checkpoint used to commit different, unordered
// snapshots, so that whichever landed second won: Update's headers were
// lost, or checkpointed bytes were left unclaimed, and later checkpoints
// found nothing to do. Update now takes ckMu, like Checkpoint.
func TestUpdateRacesCheckpoint(t *testing.T) {
	s := newStore(t, Options{})
	for i := range 5 {
		key := fmt.Sprintf("k%d", i)
		e := mustCreate(t, s, key, Meta{Size: 1000, Header: map[string][]string{"Etag": {`"a"`}}})
		writeRange(t, e, 0, rangeutil.Range{Start: 0, End: 500})

		var wg sync.WaitGroup
		wg.Go(func() {
			if err := e.Checkpoint(); err != nil {
				t.Errorf("Checkpoint() = %v, want nil", err)
			}
		})
		waitFor(e, func() bool { return e.sinceCheckpoint == 0 }) // snapshot taken
		if err := e.Update(func(m *Meta) { m.Header["Cache-Control"] = []string{"max-age=60"} }); err != nil {
			t.Errorf("Update() = %v, want nil", err)
		}
		wg.Wait()
		if err := e.Checkpoint(); err != nil {
			t.Fatalf("Checkpoint() = %v, want nil", err)
		}

		m, err := s.load(key)
		if err != nil || m == nil {
			t.Fatalf("load(%q) = %v, %v, want metadata", key, m, err)
		}
		if got := m.Header["Cache-Control"]; len(got) != 1 || got[0] != "max-age=60" {
			t.Errorf("index[%q].Header[Cache-Control] after Update raced Checkpoint = %q, want [max-age=60] (Update lost)", key, got)
		}
		if want := set([2]int64{0, 500}); !m.Ranges.Equal(want) {
			t.Errorf("index[%q].Ranges after Update raced Checkpoint = %v, want %v (checkpointed bytes unclaimed)", key, m.Ranges, want)
		}
		e.Release()
	}
}

// TestCheckpointIdempotent: checkpointing with nothing new, or an entry
// with nothing written, succeeds and changes nothing.
func TestCheckpointIdempotent(t *testing.T) {
	s := newStore(t, Options{})
	e := mustCreate(t, s, "k", Meta{Size: 10})
	defer e.Release()
	for range 2 {
		if err := e.Checkpoint(); err != nil {
			t.Fatalf("Checkpoint() = %v, want nil", err)
		}
	}
	checkIndex(t, s, "k", e.id, rangeutil.Set{})
	writeRange(t, e, 0, rangeutil.Range{Start: 0, End: 10})
	for range 2 {
		if err := e.Checkpoint(); err != nil {
			t.Fatalf("Checkpoint() = %v, want nil", err)
		}
		checkIndex(t, s, "k", e.id, set([2]int64{0, 10}))
	}
}
