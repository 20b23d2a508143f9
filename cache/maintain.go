package cache

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"
)

const (
	// evictInterval is how often the maintenance goroutine persists access
	// times and checks the size limit (commits check it too); a pass runs if
	// it is exceeded.
	evictInterval = time.Minute
	// sweepTicks: every sweepTicks-th check (hourly), starting with the
	// first, runs a pass whatever the size, for partial_ttl. A pass scans
	// and decodes the whole index (about 14 µs a record here: 3 s for
	// 200,000 records), too much to spend every minute on a TTL of days.
	sweepTicks = 60
	// kickGap is the least time between two passes a full cache asks for:
	// when nothing can be evicted (every version in use) each checkpoint
	// asks again, and each pass scans the whole index. A pass asked for
	// sooner is deferred to the end of the gap, never dropped.
	kickGap = 5 * time.Second
	// gcInterval is how often Badger's value log is garbage-collected.
	gcInterval = 10 * time.Minute
	// gcDiscardRatio: a value-log file is rewritten when at least half of
	// it is garbage (Badger's suggested ratio).
	gcDiscardRatio = 0.5
)

// startMaintenance starts the goroutine that runs eviction passes and
// value-log GC until Close, and asks for a pass at once if the index
// already claims more than MaxSize (a lowered max_size).
func (s *Store) startMaintenance() {
	s.commitMu.Lock()
	s.kickLocked()
	s.commitMu.Unlock()
	if s.opts.manual {
		return
	}
	s.maint.Add(1)
	go s.maintain(cmp.Or(s.opts.evictEvery, evictInterval), cmp.Or(s.opts.gcEvery, gcInterval), cmp.Or(s.opts.kickGap, kickGap))
}

// maintain is the maintenance goroutine. Eviction and GC take turns, so
// they never run at once.
func (s *Store) maintain(evictEvery, gcEvery, gap time.Duration) {
	defer s.maint.Done()
	evict := time.NewTicker(evictEvery)
	defer evict.Stop()
	gc := time.NewTicker(gcEvery)
	defer gc.Stop()
	var (
		last  time.Time // when the last pass started
		ticks int
		// deferred fires at the end of the gap when a pass was asked for
		// within it; nil when none is pending.
		deferred <-chan time.Time
	)
	for {
		select {
		case <-s.quit:
			return
		case <-evict.C:
			if ticks%sweepTicks == 0 || s.overMax() {
				last = time.Now()
				s.runEvictPass()
			} else if err := s.flushTouches(); err != nil {
				s.log.Error("cache: eviction check", "err", err)
			}
			ticks++
		case <-s.kick:
			if wait := gap - time.Since(last); wait > 0 {
				if deferred == nil {
					deferred = time.After(wait)
				}
				continue
			}
			last = time.Now()
			s.runEvictPass()
		case <-deferred:
			deferred = nil
			if s.overMax() {
				last = time.Now()
				s.runEvictPass()
			}
		case <-gc.C:
			s.runGC()
		}
	}
}

// runEvictPass runs an eviction pass and logs its outcome: at Info when
// it evicted something, else at Debug.
func (s *Store) runEvictPass() {
	n, bytes, err := s.evictPass()
	if err != nil {
		s.log.Error("cache: eviction pass", "err", err)
		return
	}
	level := slog.LevelDebug
	if n > 0 {
		level = slog.LevelInfo
	}
	s.log.Log(context.Background(), level, "cache: eviction pass", "evicted", n, "bytes", bytes)
}

// runGC rewrites value-log files that are mostly garbage, one per call of
// RunValueLogGC, until none qualifies or the store closes: Badger never
// reclaims that space on its own (DESIGN: facts about Badger).
func (s *Store) runGC() {
	rewritten := 0
	for {
		select {
		case <-s.quit:
			return
		default:
		}
		err := s.db.RunValueLogGC(gcDiscardRatio)
		if err == nil {
			rewritten++
			continue
		}
		if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
			s.log.Error("cache: value log GC", "err", err)
		}
		s.log.Debug("cache: value log GC done", "rewritten", rewritten)
		return
	}
}
