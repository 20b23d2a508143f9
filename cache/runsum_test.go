package cache

import (
	"hash/crc32"
	"sync/atomic"
	"testing"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// countingFile counts the reads of a body file and the syncs.
type countingFile struct {
	File
	reads, syncs *atomic.Int64
}

func (f countingFile) ReadAt(p []byte, off int64) (int, error) {
	f.reads.Add(1)
	return f.File.ReadAt(p, off)
}

func (f countingFile) Sync() error {
	f.syncs.Add(1)
	return f.File.Sync()
}

// TestRunningSumsNeedNoReadBack: a checkpoint sums the blocks a fill wrote
// in order from the bytes as they passed, without reading the file; blocks
// written out of order are read back. Either way the stored sums are those
// of the bytes written, so a reopened store serves every block.
func TestRunningSumsNeedNoReadBack(t *testing.T) {
	const size = 3*BlockSize + 1000
	for _, tc := range []struct {
		name      string
		writes    []rangeutil.Range // in this order, in chunks of 100000
		wantReads bool
	}{
		{"in order", []rangeutil.Range{{Start: 0, End: size}}, false},
		{"two fills meeting inside a block", []rangeutil.Range{
			{Start: BlockSize + 4321, End: size}, {Start: 0, End: BlockSize + 4321}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reads, syncs atomic.Int64
			opts := Options{WrapFile: func(f File) File { return countingFile{f, &reads, &syncs} }}
			dir := t.TempDir()
			s := openStore(t, dir, opts)
			e := mustCreate(t, s, "k", Meta{Size: size})
			for _, w := range tc.writes {
				for off := w.Start; off < w.End; off += 100000 {
					writeRange(t, e, 7, rangeutil.Range{Start: off, End: min(off+100000, w.End)})
				}
			}
			if err := e.Checkpoint(); err != nil {
				t.Fatalf("Checkpoint() = %v", err)
			}
			if got := reads.Load() > 0; got != tc.wantReads {
				t.Errorf("the checkpoint read the body file: %v (%d reads), want %v", got, reads.Load(), tc.wantReads)
			}
			sums, err := s.loadSums(e.Meta().ID, size)
			if err != nil || len(sums) != int(numBlocks(size)) {
				t.Fatalf("loadSums = %d sums, %v; want %d", len(sums), err, numBlocks(size))
			}
			for b := range numBlocks(size) {
				br := blockRange(b, size)
				if want := crc32.Checksum(content(7, br.Start, int(br.Len())), castagnoli); sums[b] != want {
					t.Errorf("sum of block %d = %08x, want %08x", b, sums[b], want)
				}
			}
			e.Release()
			mustClose(t, s)

			s = openStore(t, dir, Options{})
			defer mustClose(t, s)
			g := mustGet(t, s, "k")
			defer g.Release()
			for b := range numBlocks(size) {
				if n := readable(g, b*BlockSize); n <= 0 {
					t.Errorf("after reopening, block %d is not served (its sum did not match)", b)
				}
			}
		})
	}
}

// TestSyncsRunApartFromCheckpoints: checkpoints do not sync the body file;
// a sync runs in the background every SyncBytes, and Close syncs the rest
// (syncfs) before it marks the run clean.
func TestSyncsRunApartFromCheckpoints(t *testing.T) {
	var reads, syncs atomic.Int64
	opts := Options{CheckpointBytes: 64 << 10, SyncBytes: 1 << 20,
		WrapFile: func(f File) File { return countingFile{f, &reads, &syncs} }}
	s := openStore(t, t.TempDir(), opts)
	e := mustCreate(t, s, "k", Meta{Size: 3 << 20})
	writeRange(t, e, 0, rangeutil.Range{Start: 0, End: 512 << 10}) // 8 checkpoints, no sync due
	waitBackground(e, 1)
	if n := syncs.Load(); n != 0 {
		t.Errorf("after 512 KiB, 8 checkpoints: %d syncs, want 0", n)
	}
	if m, err := s.load("k"); err != nil || m == nil || m.Ranges.Covered() < 448<<10 {
		t.Fatalf("index claims %v (err %v), want at least 448 KiB claimed by checkpoints", m, err)
	}
	for off := int64(512 << 10); off < 3<<20; off += 256 << 10 {
		writeRange(t, e, 0, rangeutil.Range{Start: off, End: off + 256<<10})
	}
	waitBackground(e, 1)
	// Syncs are due at 1, 2 and 3 MiB; one that falls due while another
	// runs starts at a later write, since the writer never waits for one.
	if n := syncs.Load(); n < 1 || n > 3 {
		t.Errorf("after 3 MiB with SyncBytes 1 MiB: %d syncs, want 1 to 3", n)
	}
	e.Release()
	mustClose(t, s)
}

// TestNoBackgroundWorkAfterClose: a fill still writing after the store
// closed (a download finishing at shutdown) starts no background
// checkpoint or sync, which would use the closed index (Badger's Sync then
// panicked). Its first write lands in the file; once it would run two
// intervals ahead of the index, which can claim nothing now, it fails.
func TestNoBackgroundWorkAfterClose(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{CheckpointBytes: 64 << 10, SyncBytes: 64 << 10})
	e := mustCreate(t, s, "k", Meta{Size: 1 << 20})
	mustClose(t, s)
	var written int64
	for off := int64(0); off < 512<<10; off += 128 << 10 {
		p := content(0, off, 128<<10)
		n, err := e.WriteAt(p, off)
		written += int64(n)
		if err != nil {
			break
		}
	}
	if written < 128<<10 {
		t.Errorf("after Close, WriteAt wrote %d bytes, want at least the first 128 KiB", written)
	}
	s.background.Wait()
	e.mu.Lock()
	busy := e.checkpointing || e.syncing
	e.mu.Unlock()
	if busy {
		t.Errorf("after Close, a background checkpoint or sync is marked running")
	}
	checkRange(t, e, 0, rangeutil.Range{Start: 0, End: written})
	e.Release()
}
