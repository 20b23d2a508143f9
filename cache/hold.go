package cache

import (
	"errors"
	"sync/atomic"
)

// This file is how an entry's users come and go: references keep a version
// readable (never evicted, its file open), clients keep its fills running.
// When the last client leaves, fills are abandoned (or finish in the
// background, if their keepGoing says so); when the last reference goes,
// the entry is checkpointed and closed, and an obsolete version's file
// removed.

// Hold is one client's hold on an entry: a reference and a place among the
// entry's clients. Its one way out is Close, which gives up both, once,
// however many paths lead to it: callers defer it and may also call it
// early, before a long wait, without counting.
type Hold struct {
	e      *Entry
	closed atomic.Bool
}

// Join turns the caller's reference (from Store.Get, Store.Create or
// Acquire) into a client's hold on e. Fills run while at least one client
// holds the entry.
func (e *Entry) Join() *Hold {
	e.mu.Lock()
	e.clients++
	e.mu.Unlock()
	return &Hold{e: e}
}

// Clients returns how many clients hold e: a download nobody reads any
// more starts no new work.
func (e *Entry) Clients() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.clients
}

// Entry returns the entry held.
func (h *Hold) Entry() *Entry { return h.e }

// Move hands the hold to a new owner that outlives the caller (a response
// body): the Hold it returns releases the entry, and h's Close does nothing
// from now on.
func (h *Hold) Move() *Hold {
	moved := &Hold{e: h.e}
	if h.closed.Swap(true) {
		moved.closed.Store(true) // already given up: releasing it again would be one release too many
	}
	return moved
}

// Close gives up the hold: the client leaves (the last one abandons the
// entry's fills) and then the reference goes. Calls after the first do
// nothing.
func (h *Hold) Close() {
	if h.closed.Swap(true) {
		return
	}
	h.e.leave() // first: the quick-abort decision, before the fills wake
	h.e.Release()
}

// leave undoes Join. When the last client leaves, every fill under way is
// abandoned (its cancel function runs): the bytes so far stay cached and
// the next request resumes from them. A fill whose keepGoing says so
// finishes in the background instead.
func (e *Entry) leave() {
	e.mu.Lock()
	e.clients--
	var cancels []func()
	if e.clients == 0 {
		for _, f := range e.fills {
			if f.keepGoing != nil && f.keepGoing(f.pos, f.end) {
				continue // finishes in the background; others may still join
			}
			// Stopping: it writes what its upstream already sent, then
			// ends; a client arriving meanwhile joins it and then claims
			// the rest afresh (Claim, entryBody).
			f.abandoned = true
			if f.cancel != nil {
				cancels = append(cancels, f.cancel)
			}
		}
	}
	e.mu.Unlock()
	for _, c := range cancels {
		c()
	}
}

// Acquire takes another reference, for a goroutine that outlives the
// caller's (a fill).
func (e *Entry) Acquire() {
	e.store.mu.Lock()
	e.refs++
	e.store.mu.Unlock()
}

// Release gives up a reference. The last one checkpoints the entry, closes
// its file and, for an obsolete version, removes the file.
func (e *Entry) Release() {
	s := e.store
	s.mu.Lock()
	e.refs--
	last := e.refs == 0
	s.mu.Unlock()
	if !last {
		return
	}
	if s.afterClose() {
		// A fill that outlived the shutdown: what it wrote since Close
		// checkpointed stays unclaimed, like after a crash.
		s.log.Debug("cache: entry released after close; its last bytes stay unclaimed", "key", logKey(e.key))
	} else if err := e.Checkpoint(); err != nil {
		if !errors.Is(err, ErrStorage) { // the store logged those
			s.log.Error("cache: checkpoint on release", "key", logKey(e.key), "err", err)
		}
	}
	s.mu.Lock()
	if e.refs > 0 { // taken again by Get while we checkpointed
		s.mu.Unlock()
		return
	}
	if s.live[e.key] == e {
		delete(s.live, e.key)
	}
	s.mu.Unlock()
	e.file.Close()
	if e.isObsolete() {
		s.removeBody(e.id)
	}
	// A version in use cannot be evicted; now that it may be, a cache held
	// over MaxSize by downloads under way shrinks at once, not at the next
	// periodic check.
	s.commitMu.Lock()
	s.kickLocked()
	s.commitMu.Unlock()
}
