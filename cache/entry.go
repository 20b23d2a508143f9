package cache

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// ErrObsolete is returned when writing to a version that was replaced or
// dropped: its bytes must not reach the index any more.
var ErrObsolete = errors.New("cache: entry version is obsolete")

// Entry is the live state of one version of a cached resource: its body
// file, the bytes present in it, the fills under way and a progress signal.
// Readers and writers in any number of goroutines share one Entry; each holds
// a reference from Store.Get or Store.Create and calls Release once.
//
// Bytes become readable as soon as WriteAt returns (they are in the page
// cache, so they also survive a crash of this process); the index claims
// them at the next Checkpoint. Syncs to the disk run in the background and
// never hold a writer: what a power loss takes, the next start finds by the
// block sums (see Store.Open).
type Entry struct {
	store *Store
	key   string
	id    uint64
	file  File // immutable; closed when the last reference is released

	// refs is guarded by store.mu (Get increments it under that lock).
	refs int

	// ckMu makes checkpoints of one entry run one at a time, so that an
	// older range set is never committed after a newer one.
	ckMu sync.Mutex

	// mu guards everything below.
	mu sync.Mutex
	// meta is the current metadata; meta.Ranges lists the bytes written.
	meta Meta
	// durable lists the bytes committed to the index (claimed).
	durable rangeutil.Set
	// sinceCheckpoint counts bytes written since the last checkpoint.
	sinceCheckpoint int64
	// checkpointing is set while a background checkpoint runs.
	checkpointing bool
	// sinceSync counts bytes written since the last sync to disk started;
	// syncing is set while a background sync runs.
	sinceSync int64
	syncing   bool
	// obsolete is set when the version is replaced or dropped; it is never
	// committed again and its file is removed at the last Release.
	obsolete bool
	// changed is closed and replaced whenever bytes arrive or a fill
	// changes state, waking every waiting reader.
	changed chan struct{}
	// fills are the fills under way, in no particular order.
	fills []*Fill
	// checked holds the numbers of the blocks that may be served:
	// verified against their sum, or written by this process. A set of
	// intervals, so it costs what was written, not what the size declares.
	checked rangeutil.Set
	// clients counts the clients reading (or about to read) this entry;
	// when it drops to zero every fill is abandoned.
	clients int

	// sums follows the blocks being written, for their checksums.
	sums runningSums
	// digest hashes a body named by a digest (Meta.Digest) that is not
	// checked yet; nil otherwise. Set at creation.
	digest *digester
}

func newEntry(s *Store, m Meta, f File) *Entry {
	var d *digester
	if m.Digest != "" && !m.DigestOK {
		var err error
		if d, err = newDigester(m.Digest); err != nil {
			s.log.Warn("cache: a digest that cannot be checked is ignored", "key", logKey(m.Key), "err", err)
		}
	}
	return &Entry{
		digest:  d,
		store:   s,
		key:     m.Key,
		id:      m.ID,
		file:    f,
		refs:    1,
		meta:    m,
		durable: m.Ranges.Clone(),
		changed: make(chan struct{}),
	}
}

// Key returns the key the entry is stored under.
func (e *Entry) Key() string { return e.key }

// Meta returns a copy of the metadata; its Ranges are the bytes readable now.
func (e *Entry) Meta() Meta {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.meta.clone()
}

// Changed returns a channel that is closed at the next change of the entry
// (bytes written, a fill starting, validating or ending, obsolescence).
// Take it before inspecting the state you wait on, so no wake-up is lost.
func (e *Entry) Changed() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}

// signalLocked wakes every goroutine waiting on Changed.
func (e *Entry) signalLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// Present returns how many bytes starting at off are stored without a
// gap, up to the end of off's block: the block is the unit a reader
// verifies (VerifyBlock) before it serves any of it.
func (e *Entry) Present(off int64) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	end := e.meta.Ranges.ContiguousEnd(off)
	if end <= off || e.meta.Size < 0 {
		return end - off
	}
	return min(end, blockRange(off/BlockSize, e.meta.Size).End) - off
}

// VerifyBlock checks the block holding off before a reader serves it: a
// stored block is compared with its sum once in this process (blocks
// written by this process need no check). It returns ErrCorrupt for a
// block that does not match, which is dropped (a gap now, to be fetched
// again, never served); other errors mean it could not be checked.
func (e *Entry) VerifyBlock(off int64) error {
	e.mu.Lock()
	b := off / BlockSize
	checked := e.meta.Size < 0 || e.checked.Has(b)
	e.mu.Unlock()
	if checked {
		return nil
	}
	if err := e.verifyBlock(b); err != nil {
		return fmt.Errorf("cache: block %d of %s: %w", b, logKey(e.key), err)
	}
	return nil
}

// Obsolete reports whether the version was replaced or dropped.
func (e *Entry) Obsolete() bool { return e.isObsolete() }

func (e *Entry) isObsolete() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.obsolete
}

// ErrBodyCut is returned by ReadAt when the body file ended before bytes
// the entry claimed (the file was cut short behind the cache's back): the
// missing bytes are dropped, and read as a gap to fetch again.
var ErrBodyCut = errors.New("cache: body file shorter than claimed")

// ReadAt reads body bytes; callers read only what Available reported. A
// read that ends early at the end of the file drops the bytes the file no
// longer has (BodyEnded) and returns ErrBodyCut with what it read.
func (e *Entry) ReadAt(p []byte, off int64) (int, error) {
	n, err := e.file.ReadAt(p, off)
	if errors.Is(err, io.EOF) && n < len(p) && e.BodyEnded(off+int64(n)) {
		return n, fmt.Errorf("%w: %s at %d", ErrBodyCut, logKey(e.key), off+int64(n))
	}
	if err != nil && !(errors.Is(err, io.EOF) && n == len(p)) {
		return n, fmt.Errorf("cache: read %s at %d: %w", logKey(e.key), off, err)
	}
	return n, nil
}

// BodyEnded is told of a read of the body file that met its end at off,
// before bytes the entry claims: the file was cut short (by a hand, a disk
// tool, another program). Every claimed byte at or past the file's end
// (off, or less if the file is shorter still) is dropped from the entry
// and the index, so that readers find a gap, which their usual gap
// handling fetches again; a cut hit is never served twice. It logs what
// it dropped, and reports whether byte off is missing from the entry now
// (dropped by this call or an earlier one). False means the entry still
// claims it: a write got there meanwhile, or the version is obsolete
// (whose ranges stay as they were): the reader cannot go on.
func (e *Entry) BodyEnded(off int64) bool {
	if fi, err := os.Stat(e.store.bodyPath(e.id)); err == nil {
		off = min(off, fi.Size())
	}
	e.ckMu.Lock()
	defer e.ckMu.Unlock()
	e.mu.Lock()
	gone := rangeutil.Range{Start: off, End: math.MaxInt64}
	before := e.meta.Ranges.Covered()
	if !e.obsolete {
		e.meta.Ranges.Remove(gone)
	}
	lost := before - e.meta.Ranges.Covered()
	if lost == 0 {
		defer e.mu.Unlock()
		return !e.meta.Ranges.Has(off)
	}
	e.durable.Remove(gone)
	durable := e.durable.Clone()
	e.signalLocked()
	e.mu.Unlock()
	e.store.log.Warn("cache: body file cut short; dropping the bytes it lost, to fetch them again",
		"key", logKey(e.key), "file_ends_at", off, "bytes_dropped", lost)
	if err := e.store.commitRanges(e, durable, nil); err != nil {
		e.store.log.Error("cache: drop the bytes a cut body file lost", "key", logKey(e.key), "err", err)
	}
	return true
}

// OpenReader opens a private read-only descriptor of the body file, so a
// caller can seek it and hand it to sendfile (zero copy). Read only what
// Available reported; close it when done.
func (e *Entry) OpenReader() (*os.File, error) {
	f, err := os.Open(e.store.bodyPath(e.id))
	if err != nil {
		return nil, fmt.Errorf("cache: open %s for reading: %w", logKey(e.key), err)
	}
	return f, nil
}

// WriteAt writes body bytes at off and makes them readable. Every
// CheckpointBytes it starts a checkpoint in the background; when this
// write would take the unclaimed bytes past twice that, it first waits for
// one. Every SyncBytes it starts a sync to disk in the background, which
// it never waits for.
func (e *Entry) WriteAt(p []byte, off int64) (int, error) {
	if e.isObsolete() {
		return 0, ErrObsolete
	}
	if err := e.checkExtent(off, int64(len(p))); err != nil {
		return 0, err
	}
	every := e.store.opts.CheckpointBytes
	if behind := e.unclaimed(); behind > 0 && behind+int64(len(p)) > 2*every {
		// Background checkpoints fell behind (a busy index): claim what
		// is written before writing more, so a crash never loses more
		// than two intervals (or this one write, if it is larger).
		if err := e.Checkpoint(); err != nil {
			return 0, err
		}
	}
	n, err := e.file.WriteAt(p, off)
	e.sums.add(p[:n], off) // before the bytes count as written, so a checkpoint finds their sum
	if e.digest != nil {
		e.digest.wrote(p[:n], off)
	}
	e.mu.Lock()
	e.meta.Ranges.Insert(rangeutil.Range{Start: off, End: off + int64(n)})
	complete := e.digest != nil && e.meta.Complete()
	e.sinceCheckpoint += int64(n)
	sinceCheckpoint := e.sinceCheckpoint
	e.sinceSync += int64(n)
	syncDue := e.sinceSync >= e.store.opts.SyncBytes && !e.syncing
	if syncDue {
		e.sinceSync, e.syncing = 0, true
	}
	e.signalLocked()
	e.mu.Unlock()
	if syncDue {
		e.syncAsync()
	}
	if err != nil {
		return n, e.store.storageFailed(fmt.Sprintf("write %s at %d", logKey(e.key), off), err)
	}
	if complete {
		// The last bytes of a body named by a digest: check it before a
		// reader may serve its last byte (DigestChecked).
		if err := e.checkDigest(); err != nil {
			return n, err
		}
	}
	if sinceCheckpoint >= every {
		e.checkpointAsync()
	}
	return n, nil
}

// checkExtent refuses a write of n bytes at off that would reach past the
// version's size (or past the largest offset there is): the index would
// claim bytes beyond the end, which it refuses to load.
func (e *Entry) checkExtent(off, n int64) error {
	e.mu.Lock()
	limit := e.meta.Size
	e.mu.Unlock()
	if limit < 0 { // unknown
		limit = math.MaxInt64
	}
	if off < 0 || n > limit-off {
		return fmt.Errorf("cache: write of %d bytes at %d to %s: beyond its size (%d)", n, off, logKey(e.key), limit)
	}
	return nil
}

// unclaimed returns how many bytes are written but not yet claimed.
func (e *Entry) unclaimed() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.meta.Ranges.Covered() - e.durable.Covered()
}

// checkpointAsync runs a checkpoint in the background, at most one at a
// time, so that the writer never waits for the index: a stalled writer
// lets the upstream connection's buffers fill, which is waste when it is
// cut.
func (e *Entry) checkpointAsync() {
	e.mu.Lock()
	busy := e.checkpointing
	e.checkpointing = true
	e.mu.Unlock()
	if busy {
		return
	}
	e.Acquire()
	started := e.store.goBackground(func() {
		defer e.Release()
		for again := true; again; {
			if err := e.Checkpoint(); err != nil && !errors.Is(err, ErrStorage) { // the store logged those
				e.store.log.Error("cache: checkpoint", "key", logKey(e.key), "err", err)
			}
			// Writes that fell due meanwhile were not checkpointed: go again.
			e.mu.Lock()
			again = e.sinceCheckpoint >= e.store.opts.CheckpointBytes && !e.obsolete
			e.checkpointing = again
			e.mu.Unlock()
		}
	})
	if !started {
		e.mu.Lock()
		e.checkpointing = false
		e.mu.Unlock()
		e.Release()
	}
}

// Checkpoint claims the bytes written so far in the index: it commits the
// range set, with the sums of the blocks that became complete. The bytes
// are in the body file already (WriteAt returned), so after a crash of the
// process every claimed byte reads back as written. It does not sync to
// disk: that runs apart (syncAsync, Store.Close), at a cadence the disk can
// keep up with, and what a power loss takes from claimed bytes the next
// start cuts back or finds by the block sums (Store.Open). It does nothing
// for an obsolete version.
func (e *Entry) Checkpoint() error {
	e.ckMu.Lock()
	defer e.ckMu.Unlock()
	e.mu.Lock()
	if e.obsolete {
		e.mu.Unlock()
		return nil
	}
	snap := Meta{Size: e.meta.Size, Ranges: e.meta.Ranges.Clone()}
	e.sinceCheckpoint = 0
	e.mu.Unlock()
	if snap.Ranges.Equal(e.durableRanges()) {
		return nil
	}
	fresh, err := e.sumNewBlocks(&snap)
	if err != nil {
		return err
	}
	if err := e.store.commitRanges(e, snap.Ranges, fresh); err != nil {
		return err
	}
	e.mu.Lock()
	e.durable = snap.Ranges
	e.mu.Unlock()
	return nil
}

// syncAsync syncs the body file to disk in the background, then the index,
// so a power loss takes at most about SyncBytes of this download (and the
// kernel's own write-back bounds what it takes of the rest). The caller set
// e.syncing.
func (e *Entry) syncAsync() {
	done := func() {
		e.mu.Lock()
		e.syncing = false
		e.mu.Unlock()
	}
	e.Acquire()
	started := e.store.goBackground(func() {
		defer e.Release()
		defer done()
		if err := e.file.Sync(); err != nil {
			e.store.storageFailed(fmt.Sprintf("sync %s", logKey(e.key)), err) // logs it
		} else if err := e.store.db.Sync(); err != nil {
			e.store.log.Error("cache: sync index", "err", err)
		}
	})
	if !started { // Close syncs everything anyway
		done()
		e.Release()
	}
}

func (e *Entry) durableRanges() rangeutil.Set {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.durable.Clone()
}

// Update changes the metadata (headers, times, size) with fn and commits it.
// fn must not touch Key, ID or Ranges. Headers over MaxHeaderBytes are
// refused (ErrTooLarge), and the metadata stays as it was.
func (e *Entry) Update(fn func(m *Meta)) error {
	e.ckMu.Lock() // one commit at a time: never old headers last
	defer e.ckMu.Unlock()
	e.mu.Lock()
	m := e.meta.clone()
	fn(&m)
	if err := checkHeaderSize(&m); err != nil {
		e.mu.Unlock()
		return fmt.Errorf("cache: update %s: %w", logKey(e.key), err)
	}
	e.meta = m.clone()
	e.signalLocked()
	e.mu.Unlock()
	return e.store.commitRecord(e, m)
}

// Drop removes this version from the index; readers that hold it finish
// from its file, which is removed at the last Release.
func (e *Entry) Drop() {
	e.markObsolete()
	e.store.forget(e)
	if err := e.store.deleteIndex(e.key, e.id); err != nil {
		e.store.log.Error("cache: drop entry", "key", logKey(e.key), "err", err)
	}
}

func (e *Entry) markObsolete() {
	e.mu.Lock()
	e.obsolete = true
	e.signalLocked()
	e.mu.Unlock()
}
