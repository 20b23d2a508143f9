package proxy

import (
	"sync"
	"time"
)

// A response's headers and bytes sit in net/http's buffers until they fill
// or the handler ends, so a client of an upstream that sends little, or
// pauses, would have nothing: no headers for a long poll, no event of an
// event stream, no first byte for a client with a first-byte timeout.
// Responses are therefore flushed whenever the proxy would wait for more
// bytes: an entryBody just before it waits for a fill (it knows when it
// will), a relay when a read of its upstream takes longer than flushDelay
// (pauseFlush). A flush with nothing buffered costs nothing: bulk bytes
// still go out in large writes, and through sendfile on the cached path.

// flushDelay is how long a relay's upstream read may take before the
// response is flushed: short enough for interactive streams, long enough
// that a flowing download is not flushed between reads.
const flushDelay = 5 * time.Millisecond

// flush sends what the client's response holds, headers included, now,
// within the write timeout. A failed flush shows in the next write.
func (a *aborter) flush() {
	if a == nil {
		return
	}
	a.armWrite()
	_ = a.rc.Flush()
}

// pauseFlush flushes a client's response while the goroutine copying into
// it waits for its source longer than flushDelay. The copying goroutine
// holds mu except between wait and woke, so the timer's flush, which runs
// in a goroutine of its own, never overlaps a write, an abort, or the end
// of the response (stop).
type pauseFlush struct {
	client *aborter
	timer  *time.Timer

	// mu guards waiting and done; see above for who holds it.
	mu      sync.Mutex
	waiting bool // between wait and woke
	done    bool // after stop: the response is no longer ours
}

// newPauseFlush returns a pauseFlush held by the calling goroutine.
func newPauseFlush(c *aborter) *pauseFlush {
	f := &pauseFlush{client: c}
	f.mu.Lock()
	f.timer = time.AfterFunc(flushDelay, f.fire)
	f.timer.Stop() // armed by wait
	return f
}

// wait is called before a read that may block; it lets the timer flush.
func (f *pauseFlush) wait() {
	f.waiting = true
	f.timer.Reset(flushDelay)
	f.mu.Unlock()
}

// woke is called when the read returned; the response is the caller's
// again.
func (f *pauseFlush) woke() {
	f.mu.Lock()
	f.waiting = false
	f.timer.Stop()
}

// stop ends flushing: no flush runs once it has returned.
func (f *pauseFlush) stop() {
	f.done = true
	f.timer.Stop()
	f.mu.Unlock()
}

func (f *pauseFlush) fire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.waiting && !f.done {
		f.client.flush()
	}
}
