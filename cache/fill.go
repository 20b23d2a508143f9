package cache

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// ErrFillAbandoned is the error of a fill whose owner finished it without
// saying why.
var ErrFillAbandoned = errors.New("cache: fill abandoned")

// Fill is one goroutine's claim to write the bytes [Start, End) of an entry
// in order. Claiming keeps two goroutines from fetching the same bytes: a
// reader that finds a fill covering the byte it needs waits for it instead
// of starting another (one fetch per missing span).
//
// A fill is pending until its owner calls Validated (the upstream agreed to
// send the bytes of this version), then streaming, then done.
type Fill struct {
	e     *Entry
	start int64
	end   int64

	// Guarded by e.mu.
	cancel    func()
	keepGoing func(pos, end int64) bool
	abandoned bool
	pos       int64
	validated bool
	done      bool
	err       error
	// shrunk is set once Shrink moved end: a write past it is cut there
	// (the bytes belong to another fill) instead of refused.
	shrunk bool

	// wmu is held by Write for the whole write, and by Shrink: an end
	// never moves under a write, so no byte past it is written.
	wmu sync.Mutex
}

// Claim returns the fill that covers off: an existing one (owner false), or
// a new one for [off, end) cut short at the next present byte or the next
// fill (owner true), which the caller must drive and Finish. It returns nil
// when off is already present or the entry is obsolete.
func (e *Entry) Claim(off, end int64) (f *Fill, owner bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.obsolete || e.meta.Ranges.Has(off) {
		return nil, false
	}
	for _, f := range e.fills {
		// A fill whose clients all left still writes what its upstream
		// already sent before it stops: joining it (and claiming afresh
		// when it ends) fetches none of those bytes twice.
		if f.pos <= off && off < f.end {
			return f, false
		}
		if f.start > off {
			end = min(end, f.start)
		}
	}
	if next, ok := e.meta.Ranges.NextPresent(off); ok {
		end = min(end, next)
	}
	if e.meta.Size >= 0 {
		end = min(end, e.meta.Size)
	}
	if end <= off {
		return nil, false // nothing to fetch there
	}
	f = &Fill{e: e, start: off, end: end, pos: off}
	e.fills = append(e.fills, f)
	e.signalLocked()
	return f, true
}

// OnAbandon sets what happens to the fill when the entry's last client
// leaves: keepGoing (may be nil) is asked with the fill's position and end,
// under the entry's lock, so it must not block or call back into the
// cache; when it says no, the fill is marked abandoned and cancel runs.
func (f *Fill) OnAbandon(cancel func(), keepGoing func(pos, end int64) bool) {
	f.e.mu.Lock()
	f.cancel, f.keepGoing = cancel, keepGoing
	f.e.mu.Unlock()
}

// FillAt returns the fill that will write byte off, nil when none does.
func (e *Entry) FillAt(off int64) *Fill {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.fills {
		if f.pos <= off && off < f.end {
			return f
		}
	}
	return nil
}

// Busy reports whether a fill is under way that clients may still join.
func (e *Entry) Busy() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.fills {
		if !f.abandoned {
			return true
		}
	}
	return false
}

// Start returns the first byte of the fill.
func (f *Fill) Start() int64 { return f.start }

// End returns the end of the fill (exclusive).
func (f *Fill) End() int64 { return f.end }

// Pos returns the next byte the fill will write.
func (f *Fill) Pos() int64 {
	f.e.mu.Lock()
	defer f.e.mu.Unlock()
	return f.pos
}

// Validated records that the upstream agreed to send this version's bytes;
// readers waiting to send headers may go on.
func (f *Fill) Validated() {
	f.e.mu.Lock()
	f.validated = true
	f.e.signalLocked()
	f.e.mu.Unlock()
}

// Stopping reports whether the fill's clients all left and it is winding
// down: it still writes what its upstream already sent, then ends.
func (f *Fill) Stopping() bool {
	f.e.mu.Lock()
	defer f.e.mu.Unlock()
	return f.abandoned
}

// State returns whether the fill was validated, whether it is done and, if
// done, its error (nil for a fill that wrote all its bytes).
func (f *Fill) State() (validated, done bool, err error) {
	f.e.mu.Lock()
	defer f.e.mu.Unlock()
	return f.validated, f.done, f.err
}

// Shrink ends the fill at end instead, if it has not written that far:
// the bytes from end on become free for other fills to claim (a download
// split into segments). It reports whether it did.
func (f *Fill) Shrink(end int64) bool {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.e.mu.Lock()
	defer f.e.mu.Unlock()
	if end <= f.pos || end >= f.end || f.done {
		return false
	}
	f.end, f.shrunk = end, true
	f.e.signalLocked()
	return true
}

// Write writes p at the fill's position and advances it. After a Shrink,
// bytes past the new end are dropped: Write writes what fits and reports
// that count.
func (f *Fill) Write(p []byte) (int, error) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.e.mu.Lock()
	pos, end, shrunk := f.pos, f.end, f.shrunk
	f.e.mu.Unlock()
	if int64(len(p)) > end-pos {
		if !shrunk {
			return 0, fmt.Errorf("cache: fill of %s: %d bytes at %d overrun end %d", logKey(f.e.key), len(p), pos, end)
		}
		p = p[:max(end-pos, 0)]
	}
	n, err := f.e.WriteAt(p, pos)
	f.e.mu.Lock()
	f.pos += int64(n)
	f.e.mu.Unlock()
	return n, err
}

// Finish ends the fill. err nil means every byte up to End was written (or
// the body ended there); readers that still miss a byte it covered get err.
func (f *Fill) Finish(err error) {
	e := f.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if f.done {
		return
	}
	if err == nil && f.pos < f.end {
		err = ErrFillAbandoned
	}
	f.done, f.err = true, err
	e.fills = slices.DeleteFunc(e.fills, func(g *Fill) bool { return g == f })
	e.signalLocked()
}
