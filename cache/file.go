package cache

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// File is what an Entry needs of its body file. Options.WrapFile wraps it,
// which is how tests inject storage faults (a full disk) without a full
// disk.
type File interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Close() error
}

// ErrStorage marks a failure of the cache's own storage (a full disk, an
// unwritable directory): the proxy serves such a download uncached instead
// of failing it.
var ErrStorage = errors.New("cache: storage failed")

// storageBackoff is how long the store refuses new versions after a storage
// failure, so a full disk costs one failed write per interval, not one per
// request.
const storageBackoff = 30 * time.Second

// openBody opens a body file through Options.WrapFile.
func (s *Store) openBody(path string, flag int) (File, error) {
	f, err := s.opts.openFile(path, flag, 0o644)
	if err != nil {
		return nil, err
	}
	if s.opts.WrapFile != nil {
		return s.opts.WrapFile(f), nil
	}
	return f, nil
}

// storageFailed records a storage error: it is logged once per cause per
// storageBackoff, and new versions are refused meanwhile. It returns err
// marked with ErrStorage.
func (s *Store) storageFailed(action string, err error) error {
	if errors.Is(err, ErrStorage) {
		return err
	}
	s.faults.note(s, action, err)
	return fmt.Errorf("%w: %s: %w", ErrStorage, action, err)
}

// storageFaults rate-limits storage error logs and tells when the store
// should stop taking new versions.
type storageFaults struct {
	mu     sync.Mutex
	logged map[string]time.Time // cause → when it was last logged
	until  time.Time            // refuse new versions before this
}

func (f *storageFaults) note(s *Store, action string, err error) {
	cause := rootCause(err)
	now := time.Now()
	f.mu.Lock()
	last, seen := f.logged[cause]
	if !seen || now.Sub(last) >= storageBackoff {
		if f.logged == nil {
			f.logged = map[string]time.Time{}
		}
		f.logged[cause] = now
		seen = false
	}
	f.until = now.Add(storageBackoff)
	f.mu.Unlock()
	if !seen {
		s.log.Error("cache: storage failing; serving uncached meanwhile (logged once per "+storageBackoff.String()+")",
			"action", action, "err", err)
	}
}

// refusing reports whether new versions are refused after a recent failure.
func (f *storageFaults) refusing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Now().Before(f.until)
}

// rootCause names an error by its innermost cause (ENOSPC, EACCES, ...).
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
