package cache

import (
	"fmt"
	"time"
)

// touch is a lookup of version id at a time, waiting to be persisted.
type touch struct {
	id uint64
	at time.Time
}

// touchLocked records a lookup of e now: in its live metadata at once, in
// the index at the next flushTouches (every minute, and at Close). A
// Badger write per lookup would cost a sync per cache hit. The caller holds
// s.mu.
func (s *Store) touchLocked(e *Entry) {
	now := s.now()
	s.touched[e.key] = touch{id: e.id, at: now}
	e.mu.Lock()
	e.meta.Accessed = now
	e.mu.Unlock()
}

// flushTouches persists the access times recorded since the last flush, in
// as few transactions as Badger takes.
func (s *Store) flushTouches() error {
	s.mu.Lock()
	touched := s.touched
	s.touched = map[string]touch{}
	s.mu.Unlock()
	if len(touched) == 0 {
		return nil
	}
	ops := make([]indexOp, 0, len(touched))
	for key, t := range touched {
		ops = append(ops, touchOp(key, t.id, t.at))
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if _, err := s.writeLocked(ops); err != nil {
		return fmt.Errorf("cache: persist access times: %w", err)
	}
	return nil
}
