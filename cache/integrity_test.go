package cache

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// storeWith writes a complete entry of size bytes under each key,
// checkpoints it, and returns the store (open) and each body file's path.
func storeWith(t *testing.T, dir string, size int64, keys ...string) (*Store, map[string]string) {
	t.Helper()
	s := openStore(t, dir, Options{})
	paths := map[string]string{}
	for _, key := range keys {
		e := mustCreate(t, s, key, Meta{Size: size})
		writeRange(t, e, 1, rangeutil.Range{Start: 0, End: size})
		if err := e.Checkpoint(); err != nil {
			t.Fatalf("Checkpoint: %v", err)
		}
		if sums, err := s.loadSums(e.Meta().ID, size); err != nil || len(sums) != int(numBlocks(size)) {
			t.Fatalf("stored sums: %d (err %v), want one for each of the %d blocks", len(sums), err, numBlocks(size))
		}
		paths[key] = s.bodyPath(e.Meta().ID)
		e.Release()
	}
	return s, paths
}

// TestCorruptBlockDroppedOnRead: after a restart, a block whose bytes no
// longer match its sum is not available; it is dropped from the entry and
// from the index, and the blocks around it still are.
func TestCorruptBlockDroppedOnRead(t *testing.T) {
	dir := t.TempDir()
	const size = 3*BlockSize + 10
	s, paths := storeWith(t, dir, size, "k")
	mustClose(t, s)
	corrupt(t, paths["k"], BlockSize+5)

	s = newStoreAt(t, dir)
	e := mustGet(t, s, "k")
	defer e.Release()
	for _, c := range []struct{ off, want int64 }{
		{0, BlockSize}, {BlockSize, 0}, {BlockSize + 5, 0}, {2 * BlockSize, BlockSize}, {3 * BlockSize, 10},
	} {
		if got := readable(e, c.off); got != c.want {
			t.Errorf("readable(%d) = %d, want %d", c.off, got, c.want)
		}
	}
	var want rangeutil.Set
	want.Insert(rangeutil.Range{Start: 0, End: BlockSize})
	want.Insert(rangeutil.Range{Start: 2 * BlockSize, End: size})
	if got := e.Meta().Ranges; !got.Equal(want) {
		t.Errorf("Ranges after the drop = %v, want %v", got, want)
	}
	if m, _ := s.load("k"); !m.Ranges.Equal(want) {
		t.Errorf("index claims %v after the drop, want %v", m.Ranges, want)
	}
}

// TestVerifyReportsAndRepairs: Store.Verify checks every summed block of
// every entry, even blocks this process already served, and drops bad ones.
func TestVerifyReportsAndRepairs(t *testing.T) {
	dir := t.TempDir()
	s, paths := storeWith(t, dir, 2*BlockSize, "a", "b")
	defer mustClose(t, s)
	corrupt(t, paths["b"], BlockSize+7) // while open: a bit rots under us
	type bad struct {
		key   string
		block int64
	}
	var got []bad
	rep, err := s.Verify(func(key string, block int64) { got = append(got, bad{key, block}) })
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep != (VerifyReport{Entries: 2, Blocks: 4, Bad: 1}) || len(got) != 1 || got[0] != (bad{"b", 1}) {
		t.Errorf("Verify() = %+v, bad %v; want 2 entries, 4 blocks, block 1 of b bad", rep, got)
	}
	e := mustGet(t, s, "b")
	defer e.Release()
	if e.Meta().Ranges.Has(BlockSize + 7) {
		t.Errorf("b still claims the corrupt block: %v", e.Meta().Ranges)
	}
	if rep, _ := s.Verify(func(string, int64) {}); rep.Bad != 0 || rep.Blocks != 3 {
		t.Errorf("second Verify() = %+v, want 3 good blocks", rep)
	}
}

// corrupt flips one bit of the byte at off of the file at path.
func corrupt(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// otherBoot is a kernel boot id no real machine has: opening a store with
// it is opening it after the machine restarted.
func otherBoot() string { return "not-this-boot" }

// TestStartupCheckAfterCrash: after a run that did not end with Close and
// a restart of the machine, the blocks of the entries it wrote are checked
// in the background at startup and bad ones dropped, without waiting for a
// read. After a crash of the process alone the kernel still held every
// byte, so there is no such pass, nor after a clean Close; a first read
// still checks the block.
func TestStartupCheckAfterCrash(t *testing.T) {
	for _, tc := range []struct {
		name          string
		crash, reboot bool
		wantClaimed   bool // the corrupt block, once the startup work is done
	}{
		{"process crash", true, false, true},
		{"power loss", true, true, false},
		{"clean", false, false, true},
		{"clean, then reboot", false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, paths := storeWith(t, dir, 2*BlockSize, "k")
			if tc.crash {
				crashed := filepath.Join(t.TempDir(), "crashed")
				copyDir(t, dir, crashed) // the state a kill -9 would leave
				mustClose(t, s)
				dir = crashed
				paths["k"] = filepath.Join(crashed, strings.TrimPrefix(paths["k"], s.dir))
			} else {
				mustClose(t, s)
			}
			corrupt(t, paths["k"], BlockSize+3)

			opts := Options{}
			if tc.reboot {
				opts.bootID = otherBoot
			}
			s = openStore(t, dir, opts)
			defer mustClose(t, s)
			s.background.Wait() // the startup work, if any, is done
			m, err := s.load("k")
			if err != nil || m == nil {
				t.Fatalf("load(k) = %v, %v", m, err)
			}
			if claims := m.Ranges.Has(BlockSize + 3); claims != tc.wantClaimed {
				t.Errorf("after startup the index claims the corrupt block: %v; want %v", claims, tc.wantClaimed)
			}
			e := mustGet(t, s, "k")
			defer e.Release()
			if n := readable(e, BlockSize); n != 0 {
				t.Errorf("readable(corrupt block) = %d, want 0: it must never be served", n)
			}
			checkRange(t, e, 1, rangeutil.Range{Start: 0, End: BlockSize})
		})
	}
}

// TestPowerLossKeepsWholeSummedBlocks: claims are committed without a
// sync, so after a power loss they may name bytes that never reached the
// disk. Opening the store on a restarted machine keeps only the whole
// blocks that have a sum, and a block whose bytes were lost is dropped
// when checked, never served; after a crash of the process alone (the
// same boot) every claimed byte is kept, since the kernel had them.
func TestPowerLossKeepsWholeSummedBlocks(t *testing.T) {
	const size = 4 * BlockSize
	written := rangeutil.Range{Start: 0, End: 2*BlockSize + BlockSize/2} // two whole blocks and half of one
	for _, reboot := range []bool{false, true} {
		t.Run(map[bool]string{false: "process crash", true: "power loss"}[reboot], func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, Options{})
			e := mustCreate(t, s, "k", Meta{Size: size})
			writeRange(t, e, 1, written)
			if err := e.Checkpoint(); err != nil {
				t.Fatalf("Checkpoint() = %v", err)
			}
			path := s.bodyPath(e.Meta().ID)
			crashed := filepath.Join(t.TempDir(), "crashed")
			copyDir(t, dir, crashed) // what kill -9 leaves, or what the disk had
			e.Release()
			mustClose(t, s)
			path = filepath.Join(crashed, strings.TrimPrefix(path, dir))
			if reboot {
				// The kernel never wrote block 1 back: the disk has zeros.
				zero(t, path, rangeutil.Range{Start: BlockSize, End: 2 * BlockSize})
			}

			opts := Options{}
			if reboot {
				opts.bootID = otherBoot
			}
			s = openStore(t, crashed, opts)
			defer mustClose(t, s)
			m, err := s.load("k")
			if err != nil || m == nil {
				t.Fatalf("load(k) = %v, %v", m, err)
			}
			if reboot {
				// The half block had no sum: cut before Open returned. The
				// background check may have dropped block 1 already.
				if c := m.Ranges; !c.Contains(rangeutil.Range{Start: 0, End: BlockSize}) || c.Covered() != c.ContiguousEnd(0) || c.Covered() > 2*BlockSize {
					t.Errorf("claims at startup = %v, want [0,%d) or [0,%d)", c, BlockSize, 2*BlockSize)
				}
			} else if want := set([2]int64{written.Start, written.End}); !m.Ranges.Equal(want) {
				t.Errorf("claims at startup = %v, want %v", m.Ranges, want)
			}
			s.background.Wait()
			g := mustGet(t, s, "k")
			defer g.Release()
			if reboot {
				if n := readable(g, BlockSize); n != 0 {
					t.Errorf("readable(lost block) = %d, want 0", n)
				}
				if m := g.Meta(); !m.Ranges.Equal(set([2]int64{0, BlockSize})) {
					t.Errorf("after the check, claims = %v, want [0,%d)", m.Ranges, BlockSize)
				}
				checkRange(t, g, 1, rangeutil.Range{Start: 0, End: BlockSize})
				return
			}
			checkRange(t, g, 1, written)
		})
	}
}

// zero overwrites the bytes r of the file at path with zeros.
func zero(t *testing.T, path string, r rangeutil.Range) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, r.Len()), r.Start); err != nil {
		t.Fatal(err)
	}
}

// TestSumsStoredPerBlock: block sums are not part of the record (a record
// rewritten at every checkpoint would grow with the file), each is stored
// once under its own key, they come back on load, and they go with the
// version.
func TestSumsStoredPerBlock(t *testing.T) {
	dir := t.TempDir()
	const size = 64*BlockSize + 1
	s, _ := storeWith(t, dir, size, "k")
	e := mustGet(t, s, "k")
	id := e.Meta().ID
	sums := map[int64]uint32{} // what the blocks hash to, from the body file
	for b := range numBlocks(size) {
		sum, err := e.blockSum(b, size)
		if err != nil {
			t.Fatal(err)
		}
		sums[b] = sum
	}
	e.Release()
	var raw []byte
	s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(recordKey("k"))
		if err == nil {
			raw, _ = item.ValueCopy(nil)
		}
		return err
	})
	if strings.Contains(string(raw), "sums") || len(raw) > 1024 {
		t.Errorf("record of a %d-block entry is %d bytes and holds sums; want a small record without them", numBlocks(size), len(raw))
	}
	mustClose(t, s)

	s = newStoreAt(t, dir)
	e = mustGet(t, s, "k")
	if got, err := s.loadSums(id, size); err != nil || len(got) != 65 || !maps.Equal(got, sums) {
		t.Errorf("sums after reopen = %d of them (err %v), equal %v; want the 65 stored", len(got), err, maps.Equal(got, sums))
	}
	if got, ok, err := s.loadSum(id, 64); err != nil || !ok || got != sums[64] {
		t.Errorf("loadSum(last block) = %08x, %v, %v; want %08x, true, nil", got, ok, err, sums[64])
	}
	e.Drop()
	e.Release()
	if left, err := s.loadSums(id, size); err != nil || len(left) != 0 {
		t.Errorf("sums after Drop and Release = %v, %v; want none", len(left), err)
	}
}
