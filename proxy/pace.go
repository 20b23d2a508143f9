package proxy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// A fill writes at the upstream's speed and its readers follow at theirs.
// Left alone, a client that reads nothing would have its whole download
// fetched and held (outside max_size: an entry in use is never evicted) for
// as long as its socket stays open. So a fill runs only while a reader
// needs it (needed): one that is at most FillAhead behind it, or waiting
// ahead of it within its span. Measured from the fastest reader, not the
// slowest, this keeps clients that share a fill at the fastest one's speed
// and still bounds what is fetched for nobody to FillAhead past the
// furthest reader. A paused fill keeps its upstream connection unread (TCP
// back-pressure holds the upstream) for up to the idle timeout, then lets
// it go and asks for the rest by Range when a reader catches up.
//
// Lock order: Proxy.readersMu, then readers.mu; neither is held while
// taking an entry's lock.

// errAhead: a fill is more than FillAhead past every reader that needs its
// bytes; it pauses (drive).
var errAhead = errors.New("proxy: fill is far ahead of its readers")

// readers are the clients reading one entry, for its fills to pace
// themselves by.
type readers struct {
	// refs counts the entry bodies and fills using this value; guarded by
	// Proxy.readersMu.
	refs int

	// mu guards the fields below.
	mu sync.Mutex
	// at holds, per reader, the bytes it has still to send: [pos, end).
	at map[*entryBody]rangeutil.Range
	// moved is closed and replaced whenever a reader moves or goes.
	moved chan struct{}

	// resumes counts the fills' resumes of the entry, for the access
	// log; drops the upstream failures not yet resumed (exchange.go).
	resumes, drops atomic.Int64
}

// readersOf returns the readers of e, taking a reference that dropReaders
// gives back.
func (p *Proxy) readersOf(e *cache.Entry) *readers {
	p.readersMu.Lock()
	defer p.readersMu.Unlock()
	r := p.readers[e]
	if r == nil {
		r = &readers{at: map[*entryBody]rangeutil.Range{}, moved: make(chan struct{})}
		p.readers[e] = r
	}
	r.refs++
	return r
}

// dropReaders gives back a reference from readersOf.
func (p *Proxy) dropReaders(e *cache.Entry, r *readers) {
	p.readersMu.Lock()
	defer p.readersMu.Unlock()
	if r.refs--; r.refs == 0 {
		delete(p.readers, e)
	}
}

// set records that reader b has the bytes left to send.
func (r *readers) set(b *entryBody, left rangeutil.Range) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at[b] = left
	r.signalLocked()
}

// changed returns a channel closed at the next move of any reader.
func (r *readers) changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.moved
}

// remove forgets reader b.
func (r *readers) remove(b *entryBody) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.at, b)
	r.signalLocked()
}

func (r *readers) signalLocked() {
	close(r.moved)
	r.moved = make(chan struct{})
}

// needs reports whether a fill at pos whose span ends at end should run.
func (r *readers) needs(pos, end, ahead int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return needed(r.at, pos, end, ahead)
}

// needed decides whether a fill at pos, whose span ends at end, should go
// on, given what each reader has left to send: yes if a reader still wants
// bytes of [pos, end) and is at most ahead behind pos; and yes when nobody
// reads (a download finished in the background after its clients left, by
// the quick-abort policy, or one whose first reader is on its way).
func needed(at map[*entryBody]rangeutil.Range, pos, end, ahead int64) bool {
	if len(at) == 0 {
		return true
	}
	for _, left := range at {
		if left.Start < end && left.End > pos && left.Start+ahead >= pos {
			return true
		}
	}
	return false
}

// hold waits while a fill at pos (its span ending at end) is not needed,
// for at most linger (0: no limit). It returns whether the fill may go on
// (false when linger passed or ctx is done) and whether it waited at all.
func (r *readers) hold(ctx context.Context, pos, end, ahead int64, linger time.Duration) (goOn, waited bool) {
	var expired <-chan time.Time
	if linger > 0 {
		t := time.NewTimer(linger)
		defer t.Stop()
		expired = t.C
	}
	for {
		r.mu.Lock()
		ok, moved := needed(r.at, pos, end, ahead), r.moved
		r.mu.Unlock()
		if ok {
			return ctx.Err() == nil, waited
		}
		waited = true
		select {
		case <-moved:
		case <-expired:
			return false, true
		case <-ctx.Done():
			return false, true
		}
	}
}
