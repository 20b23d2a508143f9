// Package cache stores response bodies in sparse files, one per version of a
// resource, and indexes them in Badger. It knows nothing of HTTP requests: the
// proxy decides what to store; the cache keeps bytes and the set of byte
// ranges that are present, and makes sure the index never claims a byte that
// is not durable on disk (DESIGN invariant 5).
//
// Lock order: Store.mu before Store.commitMu before Entry.mu. Entry.ckMu
// (one checkpoint at a time per entry) is taken before Store.commitMu and
// Entry.mu, never while Store.mu is held. Store.mu is held across an index
// write (commitMu) only where a Get must not see the record in between:
// eviction and dropping a record whose body file is gone.
package cache

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// ErrLocked is returned by Open when another process holds the cache directory.
var ErrLocked = errors.New("cache: directory in use by another resumeproxy")

// DefaultCheckpointBytes is the default for Options.CheckpointBytes.
const DefaultCheckpointBytes = 4 << 20

// DefaultSyncBytes is the default for Options.SyncBytes.
const DefaultSyncBytes = 64 << 20

// DefaultPartialTTL is the default for Options.PartialTTL.
const DefaultPartialTTL = 7 * 24 * time.Hour

// DefaultMaxObjectSize is the default for Options.MaxObjectSize.
const DefaultMaxObjectSize = 64 << 30

// ErrTooLarge is returned by Create for a version the store will not keep
// (see Options.MaxObjectSize): the caller relays it uncached.
var ErrTooLarge = errors.New("cache: too large to store")

// Options configure a Store. The zero value is valid.
type Options struct {
	// CheckpointBytes is how many bytes may be written to an entry between two
	// checkpoints (commit its range set to the index). A write that would
	// take the writer more than twice this far ahead of the index waits for
	// a checkpoint first, so a crash of the process loses at most
	// 2 × CheckpointBytes of a download (or one write, if larger). Zero
	// means DefaultCheckpointBytes.
	CheckpointBytes int64
	// SyncBytes is how many bytes may be written to an entry between two
	// syncs to disk, which run in the background: a power loss takes about
	// this much of a download, besides what the kernel had not written back
	// of its last bytes. Nothing waits for a sync, so the disk's sync rate
	// never limits a download. Zero means DefaultSyncBytes.
	SyncBytes int64
	// MaxSize bounds the bytes the cache keeps. A version counts the bytes
	// present in its body file (Meta.Ranges.Covered()) as the index claims
	// them, not the file's apparent size: body files are sparse, and a
	// partial download of a 4 GiB image may hold a few MiB. It also counts
	// its index record (key and value: about a KiB with a dozen headers,
	// at most MaxHeaderBytes and the key more), so that many small
	// versions with large headers cannot grow the index unbounded. When
	// the total exceeds MaxSize, the least recently accessed versions,
	// complete or partial, are evicted down to 90% of it; versions in use
	// are never evicted. Zero (or negative) means automatic: a quarter of
	// the filesystem holding the cache, measured at Open, at least 1 GiB
	// and at most 100 GiB.
	MaxSize int64
	// MaxObjectSize bounds the size of one version: Create refuses a
	// larger one with ErrTooLarge, so the proxy relays it. Nothing an
	// origin declares costs memory in proportion (the bookkeeping follows
	// the bytes written), but a declared size of exabytes is a lie or a
	// stream no cache should take. Zero (or negative) means
	// DefaultMaxObjectSize (64 GiB).
	MaxObjectSize int64
	// PartialTTL is how long a partial version (some byte missing) is kept
	// without being accessed before it is evicted (checked hourly). Zero (or
	// negative) means DefaultPartialTTL (7 days).
	PartialTTL time.Duration
	// Now is the clock for the times the store records (Meta.Created,
	// Meta.Accessed) and for PartialTTL. Nil means time.Now.
	Now func() time.Time
	// Logger receives storage errors. Nil means slog.Default().
	Logger *slog.Logger
	// WrapFile, when set, wraps every body file the store opens (tests use
	// it to inject faults). Nil means the files are used as they are.
	WrapFile func(File) File

	// Test knobs. evictEvery, gcEvery and kickGap override evictInterval,
	// gcInterval and kickGap when positive; manual starts no maintenance
	// goroutine, so that a test runs eviction passes itself, at known points.
	evictEvery, gcEvery, kickGap time.Duration
	manual                       bool
	// bootID, when set, replaces the kernel's boot id, so that a test can
	// restart "the machine".
	bootID func() string
	// openFile, when set, replaces os.OpenFile for body files, so that a
	// test can make opening fail (EMFILE, EACCES).
	openFile func(name string, flag int, perm os.FileMode) (*os.File, error)
}

// Store is an open cache directory.
type Store struct {
	dir  string
	db   *badger.DB
	lock *os.File
	opts Options
	log  *slog.Logger

	// background counts the goroutines that use the index in the
	// background (checkpoints, syncs, the startup check); Close waits for
	// them before closing the index. closing, guarded by bgMu, is set when
	// Close begins: goBackground starts nothing after it.
	background sync.WaitGroup
	bgMu       sync.Mutex
	closing    bool
	// indexClosed, guarded by bgMu, is set as Close closes the index: an
	// entry released later (a fill that outlived the shutdown) has nothing
	// to commit to.
	indexClosed bool

	// quit, closed by Close, stops the maintenance goroutine (eviction and
	// value-log GC), which maint counts. kick asks it for an eviction pass
	// now; its capacity of one coalesces requests.
	quit     chan struct{}
	stopOnce sync.Once
	maint    sync.WaitGroup
	kick     chan struct{}

	// commitMu serialises index writes, so that a checkpoint of a replaced
	// version can never overwrite its successor's metadata, and guards used.
	commitMu sync.Mutex
	// used is the sum of the versions' footprints (version.footprint: the
	// bytes the index claims and the records), which eviction keeps under
	// MaxSize. Every index
	// write adjusts it (writeLocked); Open sums it once. Bytes written but
	// not yet checkpointed (under 2 × CheckpointBytes per entry) and those of
	// replaced versions still being read are not counted.
	used int64

	// epoch numbers this run (startEpoch); commits record it. bootID
	// names the kernel boot it runs in ("" when unknown), which tells a
	// crash of the process from a restart of the machine.
	epoch  uint64
	bootID string

	// removed counts the versions evicted and purged (Usage).
	removed removals

	// verified remembers the blocks checked against their sums.
	verified verifiedBlocks
	// faults rate-limits storage error logs and pauses new versions.
	faults storageFaults

	// mu guards live and touched.
	mu sync.Mutex
	// live maps a key to the current version's live entry while anyone
	// holds a reference to it.
	live map[string]*Entry
	// touched holds the lookups since the access times were last persisted
	// (flushTouches), so that serving an entry costs no index write.
	touched map[string]touch
}

// Open opens (creating if needed) the cache under dir: dir/index for Badger
// and dir/data for body files. It fails with ErrLocked when another process
// uses the directory.
//
// Open reconciles the index with the body files (see reconcile), then starts
// the maintenance goroutine that Close stops.
func Open(dir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("cache: create %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	db, err := openIndex(dir)
	if err != nil {
		lock.Close()
		return nil, err
	}
	s := &Store{
		dir: dir, db: db, lock: lock, opts: opts, log: opts.Logger,
		quit: make(chan struct{}), kick: make(chan struct{}, 1),
		live: map[string]*Entry{}, touched: map[string]touch{},
	}
	s.bootID = opts.bootID()
	s.setMaxSize()
	if err := s.reconcile(); err != nil {
		return nil, errors.Join(err, db.Close(), lock.Close())
	}
	st, err := s.startEpoch()
	if err != nil {
		return nil, errors.Join(err, db.Close(), lock.Close())
	}
	if st.powerLost {
		if err := s.cutUnsynced(st.dirty); err != nil {
			return nil, errors.Join(err, db.Close(), lock.Close())
		}
		// What survived is on disk: the page cache did not.
		if err := s.markSynced(); err != nil {
			return nil, errors.Join(err, db.Close(), lock.Close())
		}
	}
	s.startMaintenance()
	if !st.clean && st.prev > 0 {
		s.background.Add(1)
		go s.checkAfterCrash(st)
	}
	return s, nil
}

// withDefaults fills in the defaults the Options fields document, except
// the automatic MaxSize, which needs the directory (setMaxSize).
func (o Options) withDefaults() Options {
	if o.CheckpointBytes <= 0 {
		o.CheckpointBytes = DefaultCheckpointBytes
	}
	if o.SyncBytes <= 0 {
		o.SyncBytes = DefaultSyncBytes
	}
	if o.PartialTTL <= 0 {
		o.PartialTTL = DefaultPartialTTL
	}
	if o.MaxObjectSize <= 0 {
		o.MaxObjectSize = DefaultMaxObjectSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.bootID == nil {
		o.bootID = bootID
	}
	if o.openFile == nil {
		o.openFile = os.OpenFile
	}
	return o
}

// openIndex opens the Badger index under dir, after checking its files
// (checkIndexFiles).
func openIndex(dir string) (*badger.DB, error) {
	bopts := badger.DefaultOptions(filepath.Join(dir, "index")).
		WithLogger(nil).
		// Commits survive a crash of the process without a sync (the
		// write-ahead file is a shared mapping); syncs run with the body
		// files' (Entry.syncAsync, Close), and after a power loss Open
		// cuts back what the crashed run had not synced.
		WithSyncWrites(false).
		WithNumVersionsToKeep(1).
		WithMemTableSize(8 << 20).
		WithValueLogFileSize(64 << 20).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(16 << 20).
		WithNumCompactors(2).
		WithMetricsEnabled(false)
	if err := checkIndexFiles(dir, bopts); err != nil {
		return nil, indexError(dir, err)
	}
	db, err := openBadger(bopts)
	if err != nil {
		return nil, indexError(dir, err)
	}
	return db, nil
}

// lockDir takes an exclusive advisory lock on dir/LOCK so that a second
// process gets a clear error instead of Badger's.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cache: open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (another resumeproxy process holds it; stop it or use --cache-dir)", ErrLocked, dir)
		}
		return nil, fmt.Errorf("cache: lock %s: %w", path, err)
	}
	return f, nil
}

// Dir returns the cache directory.
func (s *Store) Dir() string { return s.dir }

// Close stops the maintenance goroutine and waits for it, checkpoints every
// live entry, persists the access times recorded since the last flush,
// syncs the body files to disk and marks the run clean, then closes the
// index and releases the directory lock.
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.quit) })
	s.bgMu.Lock()
	s.closing = true // a fill still writing at shutdown starts no more background work
	s.bgMu.Unlock()
	s.maint.Wait()
	s.mu.Lock()
	entries := make([]*Entry, 0, len(s.live))
	for _, e := range s.live {
		entries = append(entries, e)
	}
	s.mu.Unlock()
	var errs []error
	for _, e := range entries {
		errs = append(errs, e.Checkpoint())
	}
	s.background.Wait()
	errs = append(errs, s.flushTouches())
	if err := errors.Join(errs...); err == nil {
		if err := syncFS(s.dataDir()); err != nil {
			errs = append(errs, s.storageFailed("sync the cache at shutdown", err))
		} else {
			errs = append(errs, s.markClean()) // only when everything is checkpointed and synced
		}
	}
	s.bgMu.Lock()
	s.indexClosed = true
	s.bgMu.Unlock()
	errs = append(errs, s.db.Close(), s.lock.Close())
	return errors.Join(errs...)
}

// afterClose reports whether the index is closed.
func (s *Store) afterClose() bool {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	return s.indexClosed
}

// goBackground runs fn in a goroutine that Close waits for, unless Close
// has begun: then it runs nothing and returns false. Background work must
// never touch the index after Close (Badger's Sync on a closed DB panics).
func (s *Store) goBackground(fn func()) bool {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.closing {
		return false
	}
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		fn()
	}()
	return true
}

// Get returns the live entry for key with a reference the caller must
// Release, or nil when nothing is stored under key. A Get counts as an
// access for eviction (Meta.Accessed).
func (s *Store) Get(key string) (*Entry, error) { return s.get(key, true) }

// get is Get; with access false the access time stays as it was, for
// maintenance that reads every entry (Verify), which is no use of it.
func (s *Store) get(key string, access bool) (*Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.live[key]; ok {
		e.refs++
		if access {
			s.touchLocked(e)
		}
		return e, nil
	}
	m, err := s.load(key)
	if err != nil || m == nil {
		return nil, err
	}
	f, err := s.openBody(s.bodyPath(m.ID), os.O_RDWR)
	if errors.Is(err, fs.ErrNotExist) {
		// The index claims a body file that is gone: forget the entry.
		s.log.Warn("cache: body file missing, dropping entry", "key", logKey(key), "err", err)
		return nil, s.deleteIndex(key, m.ID)
	}
	if err != nil {
		// Too many open files, permissions, the disk: the file may well
		// be there, and the entry with it.
		return nil, fmt.Errorf("cache: open body of %s: %w", logKey(key), err)
	}
	e := newEntry(s, *m, f)
	s.live[key] = e
	if access {
		s.touchLocked(e)
	}
	return e, nil
}

// Create stores a new, empty version of key described by m (its ID and
// Ranges are set here) and returns its live entry with a reference. The
// previous version, if any, becomes obsolete: readers that hold it finish
// from its file, which is removed when the last of them releases it.
func (s *Store) Create(key string, m Meta) (*Entry, error) {
	e, _, err := s.create(key, m, rangeutil.Range{})
	return e, err
}

// CreateFill is Create for a caller that already has bytes r of the new
// version coming: the entry is published with a fill claiming r (pending
// validation, owned by the caller), so no other request can claim those
// bytes first and fetch them again.
func (s *Store) CreateFill(key string, m Meta, r rangeutil.Range) (*Entry, *Fill, error) {
	return s.create(key, m, r)
}

func (s *Store) create(key string, m Meta, r rangeutil.Range) (*Entry, *Fill, error) {
	m.Key = key
	m.ID = newID()
	m.Ranges = rangeutil.Set{}
	now := s.now()
	if m.Created.IsZero() {
		m.Created = now
	}
	if m.Accessed.IsZero() {
		m.Accessed = now
	}
	if m.Size > s.opts.MaxObjectSize {
		return nil, nil, fmt.Errorf("%w: %d bytes, over the maximum object size of %d", ErrTooLarge, m.Size, s.opts.MaxObjectSize)
	}
	if err := checkHeaderSize(&m); err != nil {
		return nil, nil, err
	}
	if s.faults.refusing() {
		return nil, nil, fmt.Errorf("%w: not storing new versions after a recent failure", ErrStorage)
	}
	path := s.bodyPath(m.ID)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, s.storageFailed("create "+filepath.Dir(path), err)
	}
	file, err := s.openBody(path, os.O_CREATE|os.O_EXCL|os.O_RDWR)
	if err != nil {
		return nil, nil, s.storageFailed("create body file", err)
	}
	e := newEntry(s, m.clone(), file) // its maps are its own: m is committed after e is published
	var fill *Fill
	if !r.Empty() {
		fill = &Fill{e: e, start: r.Start, end: r.End, pos: r.Start}
		e.fills = append(e.fills, fill) // before anyone can see e
	}
	s.mu.Lock()
	old := s.live[key]
	var stale *Meta // a previous version nobody holds: only in the index
	if old == nil {
		stale, _ = s.load(key)
	}
	s.live[key] = e
	s.mu.Unlock()
	if old != nil {
		old.markObsolete()
	}
	err = s.commit(e, func(epoch uint64) []indexOp {
		return []indexOp{putRecordOp(m), putRangesOp(m.ID, epoch, m.Ranges)}
	})
	if err != nil {
		if fill != nil {
			fill.Finish(err)
		}
		e.Drop()
		e.Release()
		return nil, nil, err
	}
	if stale != nil {
		s.removeBody(stale.ID)
	}
	return e, fill, nil
}

// removeBody deletes a body file that no version in the index names.
func (s *Store) removeBody(id uint64) {
	s.verified.forget(id)
	if err := s.deleteSums(id); err != nil {
		s.log.Error("cache: delete block sums", "id", id, "err", err)
	}
	if err := os.Remove(s.bodyPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Error("cache: remove body file", "id", id, "err", err)
	}
}

// load reads key's metadata from the index; nil when absent.
func (s *Store) load(key string) (*Meta, error) {
	var (
		v      version
		exists bool
	)
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		v, exists, err = record(txn, key)
		return err
	})
	if err == nil && exists {
		err = v.derr
	}
	if err != nil {
		return nil, fmt.Errorf("cache: load %s: %w", logKey(key), err)
	}
	if !exists {
		return nil, nil
	}
	return v.m, nil
}

// commit applies the index writes ops makes for this run's epoch, unless
// e has been replaced or dropped. Commits are serialised (commitMu), so a
// late checkpoint of an old version never overwrites its successor.
func (s *Store) commit(e *Entry, ops func(epoch uint64) []indexOp) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if e.isObsolete() {
		return nil
	}
	if _, err := s.writeLocked(ops(s.epoch)); err != nil {
		return fmt.Errorf("cache: commit %s: %w", logKey(e.key), err)
	}
	return nil
}

// commitRanges claims rs for e's version, with the sums of the blocks it
// completes: all a checkpoint writes, whatever the headers weigh.
func (s *Store) commitRanges(e *Entry, rs rangeutil.Set, newSums []blockSum) error {
	return s.commit(e, func(epoch uint64) []indexOp {
		// Sums first: if Badger splits the write, a crash in between
		// leaves a sum nobody claims, never a claimed block without its
		// sum.
		ops := make([]indexOp, 0, len(newSums)+1)
		for _, bs := range newSums {
			ops = append(ops, putSumOp(e.id, bs.block, bs.sum))
		}
		return append(ops, putRangesOp(e.id, epoch, rs))
	})
}

// commitRecord writes m's record: its headers, times and size, not its
// range set.
func (s *Store) commitRecord(e *Entry, m Meta) error {
	return s.commit(e, func(uint64) []indexOp { return []indexOp{putRecordOp(m)} })
}

// deleteIndex removes key from the index if it still names body file id.
func (s *Store) deleteIndex(key string, id uint64) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if _, err := s.writeLocked([]indexOp{deleteOp(key, id)}); err != nil {
		return fmt.Errorf("cache: delete %s: %w", logKey(key), err)
	}
	return nil
}

// forget removes e from the live map if it is still the current version.
func (s *Store) forget(e *Entry) {
	s.mu.Lock()
	if s.live[e.key] == e {
		delete(s.live, e.key)
	}
	s.mu.Unlock()
}

func (s *Store) bodyPath(id uint64) string {
	name := bodyName(id)
	return filepath.Join(s.dataDir(), name[:2], name)
}

// dataDir is the directory of the body files.
func (s *Store) dataDir() string { return filepath.Join(s.dir, "data") }

// bodyName is the file name of body file id; bodyPath puts it in the
// directory named by its first two characters.
func bodyName(id uint64) string { return fmt.Sprintf("%016x", id) }

// keys lists every key in the index.
func (s *Store) keys() ([]string, error) {
	var keys []string
	err := s.eachRecord(func(key string, _ version) { keys = append(keys, key) })
	if err != nil {
		return nil, fmt.Errorf("cache: list keys: %w", err)
	}
	return keys, nil
}

func (s *Store) now() time.Time { return s.opts.Now() }

func newID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return binary.LittleEndian.Uint64(b[:]) | 1
}
