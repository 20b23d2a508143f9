package proxy

import (
	"sync"
	"time"
)

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
func (p *Proxy) keepGoing(src source, cancel func()) func(pos, end int64) bool {
	q := p.opts.QuickAbort
	var once sync.Once
	return func(pos, end int64) bool {
		if !q.finishes(pos, end, src.size) {
			return false
		}
		once.Do(func() {
			p.log.Info("last client left; finishing the download in the background",
				"url", clip(src.url.Redacted()), "at", pos, "left", end-pos, "max_time", q.MaxTime)
			time.AfterFunc(q.MaxTime, cancel)
		})
		return true
	}
}
