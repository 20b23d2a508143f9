package cache

import (
	"cmp"
	"fmt"
	"slices"
	"syscall"
	"time"
)

// The automatic MaxSize (Options.MaxSize zero) is a quarter of the
// filesystem holding the cache: it leaves room for whatever else lives
// there, and a disk full of cache fails every other program. The bounds keep
// it useful on a small disk and modest on a huge one.
const (
	autoMaxSizeMin = 1 << 30
	autoMaxSizeMax = 100 << 30
)

// autoMaxSize is the automatic MaxSize for a filesystem of fsBytes bytes.
func autoMaxSize(fsBytes int64) int64 {
	return min(max(fsBytes/4, autoMaxSizeMin), autoMaxSizeMax)
}

// fsSize returns the total size of the filesystem holding dir. Linux
// counts f_blocks in f_frsize units, which equals f_bsize on the usual
// filesystems; f_bsize is the one every Unix has.
func fsSize(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("cache: statfs %s: %w", dir, err)
	}
	return int64(st.Blocks) * int64(st.Bsize), nil
}

// setMaxSize resolves an automatic MaxSize from the filesystem holding the
// cache directory. When that cannot be measured it takes the lower bound.
func (s *Store) setMaxSize() {
	if s.opts.MaxSize > 0 {
		return
	}
	n, err := fsSize(s.dir)
	if err != nil {
		s.log.Warn("cache: cannot measure the disk; using the smallest automatic max_size", "err", err)
	}
	s.opts.MaxSize = autoMaxSize(n)
	s.log.Info("cache: automatic max_size", "bytes", s.opts.MaxSize, "filesystem_bytes", n)
}

// lowWater is where a pass that evicts for size stops: 90% of MaxSize, so
// that the next pass is due only after that much more is stored, not at
// every checkpoint of a full cache.
func lowWater(maxSize int64) int64 { return maxSize - maxSize/10 }

// candidate is what eviction needs to know of one index record.
type candidate struct {
	key      string
	id       uint64
	size     int64 // its footprint: bytes present and its record
	lastUse  time.Time
	complete bool
	// expired is set by victims for a partial version evicted for its
	// age rather than for space (Usage tells them apart).
	expired bool
}

// victims chooses what one pass evicts, in order: every partial version
// last used before cutoff, then, if the total used still exceeds maxSize,
// the least recently used of the rest (complete or partial) until it is at
// most low. cands must not include versions in use.
func victims(cands []candidate, used, maxSize, low int64, cutoff time.Time) []candidate {
	var out, rest []candidate
	for _, c := range cands {
		if !c.complete && c.lastUse.Before(cutoff) {
			c.expired = true
			out = append(out, c)
			used -= c.size
		} else {
			rest = append(rest, c)
		}
	}
	if used <= maxSize {
		return out
	}
	slices.SortFunc(rest, func(a, b candidate) int {
		return cmp.Or(a.lastUse.Compare(b.lastUse), cmp.Compare(a.key, b.key))
	})
	for _, c := range rest {
		if used <= low {
			break
		}
		out = append(out, c)
		used -= c.size
	}
	return out
}

// evictPass persists access times, reads the index, and evicts what
// victims chooses. It scans the whole index, so it runs when the total
// exceeds MaxSize and hourly (see sweepTicks), not per write. It returns
// how many versions and bytes it evicted.
func (s *Store) evictPass() (n int, bytes int64, err error) {
	if err := s.flushTouches(); err != nil {
		return 0, 0, err
	}
	cands, err := s.candidates()
	if err != nil {
		return 0, 0, err
	}
	s.commitMu.Lock()
	used := s.used
	s.commitMu.Unlock()
	cutoff := s.now().Add(-s.opts.PartialTTL)
	return s.evict(victims(cands, used, s.opts.MaxSize, lowWater(s.opts.MaxSize), cutoff))
}

// candidates lists the index records nobody holds or looked up since the
// last flush. Undecodable records are left out: Get reports them.
func (s *Store) candidates() ([]candidate, error) {
	var cands []candidate
	err := s.eachRecord(func(key string, v version) {
		if m := v.m; m != nil {
			cands = append(cands, candidate{key: key, id: m.ID, size: v.footprint(), lastUse: m.lastUse(), complete: m.Complete()})
		}
	})
	if err != nil {
		return nil, fmt.Errorf("cache: scan index: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.DeleteFunc(cands, s.busyLocked), nil
}

// busyLocked reports whether c must not be evicted now: its key has a live
// entry (someone holds a reference: a reader, a fill, a checkpoint), or it
// was looked up after the pass persisted access times, so the pass's view
// of its last use is stale. The caller holds s.mu.
func (s *Store) busyLocked(c candidate) bool {
	_, touched := s.touched[c.key]
	return s.live[c.key] != nil || touched
}

// evict removes the records of vs and then their body files, skipping
// those busy by now. s.mu is held while the records go, so that no Get
// loads one in between; the files go after, since no record names them.
func (s *Store) evict(vs []candidate) (n int, bytes int64, err error) {
	s.mu.Lock()
	ops := make([]indexOp, 0, len(vs))
	var expired, full int64
	for _, c := range vs {
		if !s.busyLocked(c) {
			ops = append(ops, deleteOp(c.key, c.id))
			if c.expired {
				expired++
			} else {
				full++
			}
		}
	}
	s.commitMu.Lock()
	before := s.used
	freed, err := s.writeLocked(ops)
	bytes = before - s.used
	s.commitMu.Unlock()
	s.mu.Unlock()
	for _, id := range freed {
		s.removeBody(id)
	}
	if err != nil {
		err = fmt.Errorf("cache: evict: %w", err)
	} else {
		s.removed.ttl.Add(expired)
		s.removed.size.Add(full)
	}
	return len(freed), bytes, err
}

// overMax reports whether the index claims more than MaxSize.
func (s *Store) overMax() bool {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	return s.used > s.opts.MaxSize
}

// kickLocked asks the maintenance goroutine for an eviction pass if the
// index claims more than MaxSize. The caller holds commitMu.
func (s *Store) kickLocked() {
	if s.used <= s.opts.MaxSize {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default: // a pass is already due
	}
}
