package proxy

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
)

// This file is what happens when the last client of an entry leaves (the
// client's side is cache.Hold.Close): each fill asks keepGoing whether it
// is worth finishing with nobody reading (quick abort); the others stop
// through their fillStop, which lets the bytes already on their way land
// first, and the bytes so far stay cached for the next request.

// abandonable arms fill f, whose upstream request cancel ends, for its
// entry's last client leaving, and returns the fillStop the fill's copy
// loop tracks its bodies with.
func (p *Proxy) abandonable(f *cache.Fill, src source, cancel context.CancelFunc) *fillStop {
	stop := &fillStop{cancel: cancel}
	f.OnAbandon(stop.stop, p.keepGoing(src, cancel))
	return stop
}

// QuickAbort decides what happens to a download when its last client
// leaves (Squid calls it quick_abort). By default it stops, and the bytes
// so far stay cached for the next request; a download close to its end
// may instead be finished in the background, so the next client gets a
// hit. Either condition is enough.
type QuickAbort struct {
	// FinishBelow finishes a download with at most this many bytes left.
	// Zero: never.
	FinishBelow int64
	// FinishAbovePercent finishes a download that has reached this share
	// (0–100) of the body. Zero: never.
	FinishAbovePercent float64
	// MaxTime bounds a background finish. Default 10m.
	MaxTime time.Duration
}

// finishes reports whether a fill at pos, ending at end, of a body of size
// bytes is worth finishing with nobody reading.
func (q QuickAbort) finishes(pos, end, size int64) bool {
	byRest := q.FinishBelow > 0 && end-pos <= q.FinishBelow
	byShare := q.FinishAbovePercent > 0 && size > 0 && float64(pos)*100 >= q.FinishAbovePercent*float64(size)
	return byRest || byShare
}

// keepGoing returns the fill's quick-abort decision (cache.Fill.OnAbandon).
// It runs under the entry's lock: it only decides, logs, and arms the
// timer that bounds a background finish.
//
// A segment of a split download (segment.go) is always finished: it is a
// bounded request, every byte of it is kept for the next client, and
// stopping it mid-way would only waste what its connection has in flight,
// once per connection. The segmenter starts no new one.
func (p *Proxy) keepGoing(src source, cancel func()) func(pos, end int64) bool {
	q := p.opts.QuickAbort
	var once sync.Once
	return func(pos, end int64) bool {
		if !src.segment && !q.finishes(pos, end, src.size) {
			return false
		}
		once.Do(func() {
			level := slog.LevelInfo
			if src.segment {
				level = slog.LevelDebug
			}
			p.log.Log(context.Background(), level, "last client left; finishing the download in the background",
				"url", clip(src.url.Redacted()), "at", pos, "left", end-pos, "max_time", q.MaxTime, "segment", src.segment)
			time.AfterFunc(q.MaxTime, cancel)
		})
		return true
	}
}

// fillStop stops a fill when the last client of its entry leaves: it winds
// the current upstream body down, or cancels at once between bodies.
type fillStop struct {
	cancel context.CancelFunc

	// mu guards body and stopped.
	mu      sync.Mutex
	body    *upstreamBody // the body being copied; nil between attempts
	stopped bool
}

// stop is the fill's abandon function (cache.Fill.OnAbandon).
func (s *fillStop) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.body == nil || !s.body.windDown() {
		s.cancel()
	}
}

// track records the body being copied (nil when none). It returns false
// when the fill was stopped meanwhile, and then cancels it.
func (s *fillStop) track(body io.ReadCloser) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, _ = body.(*upstreamBody)
	if s.stopped {
		s.cancel()
		return false
	}
	return true
}
