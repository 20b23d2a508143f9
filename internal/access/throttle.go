package access

import (
	"net/netip"
	"sync"
	"time"
)

// Throttle decides which events to log: at most one per key per interval,
// and at most max keys remembered. When max keys were logged within the
// interval, further new keys are not logged until older ones expire: a
// client with many addresses cannot fill the log or the memory.
type Throttle struct {
	every time.Duration
	max   int

	// mu guards last.
	mu sync.Mutex
	// last is when each key was last allowed.
	last map[netip.Addr]time.Time
}

// NewThrottle returns a Throttle allowing a key once per every, remembering
// at most max keys.
func NewThrottle(every time.Duration, max int) *Throttle {
	return &Throttle{every: every, max: max, last: map[netip.Addr]time.Time{}}
}

// Allow reports whether an event for key at now should be logged, and if
// so records it.
func (t *Throttle) Allow(key netip.Addr, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if at, ok := t.last[key]; ok && now.Sub(at) < t.every {
		return false
	}
	if _, ok := t.last[key]; !ok && len(t.last) >= t.max {
		t.expireLocked(now)
		if len(t.last) >= t.max {
			return false
		}
	}
	t.last[key] = now
	return true
}

// expireLocked forgets keys last allowed an interval or more ago.
func (t *Throttle) expireLocked(now time.Time) {
	for k, at := range t.last {
		if now.Sub(at) >= t.every {
			delete(t.last, k)
		}
	}
}
