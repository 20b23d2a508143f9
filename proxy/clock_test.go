package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// The proxy's own clocks (retry budgets, paused fills, background
// finishes) run on time.Now and timers; these tests run them in a
// synctest bubble, where time is virtual: minutes pass at once and the
// figures are exact.

// TestBudgetRetryWindow: a fill gives up once MaxElapsed has passed
// without progress, whatever Attempts allows; progress restarts the window
// and the backoff.
func TestBudgetRetryWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := Retry{Attempts: 100, MaxElapsed: 12 * time.Second, InitialBackoff: time.Second, MaxBackoff: 4 * time.Second}
		b := newBudget(r, time.Now)
		start := time.Now()
		waits := 0
		for b.wait(t.Context()) {
			waits++
		}
		// Backoffs 1, 2, 4, 4 s: 11 s; the next 4 s would pass 12 s.
		if got := time.Since(start); waits != 4 || got != 11*time.Second {
			t.Errorf("without progress: %d waits over %v, want 4 over 11s", waits, got)
		}

		b.progress()
		start = time.Now()
		if !b.wait(t.Context()) || time.Since(start) != time.Second {
			t.Errorf("after progress: first wait took %v or failed, want 1s (backoff restarted)", time.Since(start))
		}
	})
}

// TestBudgetAttempts: Attempts in a row without progress end the retries
// even within the window.
func TestBudgetAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := Retry{Attempts: 3, MaxElapsed: time.Hour, InitialBackoff: time.Second, MaxBackoff: time.Second}
		b := newBudget(r, time.Now)
		waits := 0
		for b.wait(t.Context()) {
			waits++
		}
		if waits != 3 {
			t.Errorf("%d waits, want 3", waits)
		}
	})
}

// TestBudgetWaitEndsWithContext: a fill whose clients left stops waiting
// at once.
func TestBudgetWaitEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBudget(Retry{Attempts: 10, MaxElapsed: time.Hour, InitialBackoff: time.Minute, MaxBackoff: time.Minute}, time.Now)
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		if b.wait(ctx) {
			t.Error("wait = true after its context was cancelled, want false")
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("wait returned after %v, want 1s (when the context ended)", got)
		}
	})
}

// TestHoldLinger: a paused fill holds its connection for linger, then lets
// it go; a reader catching up wakes it at once.
func TestHoldLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ahead = 100
		r := &readers{at: map[*entryBody]rangeutil.Range{}, moved: make(chan struct{})}
		slow := &entryBody{}
		r.set(slow, rangeutil.Range{Start: 0, End: 1000}) // 500 behind the fill

		start := time.Now()
		goOn, waited := r.hold(t.Context(), 500, 1000, ahead, 30*time.Second)
		if goOn || !waited || time.Since(start) != 30*time.Second {
			t.Errorf("nobody caught up: hold = %v, %v after %v, want false, true after 30s", goOn, waited, time.Since(start))
		}

		start = time.Now()
		time.AfterFunc(7*time.Second, func() { r.set(slow, rangeutil.Range{Start: 450, End: 1000}) })
		goOn, waited = r.hold(t.Context(), 500, 1000, ahead, 30*time.Second)
		if !goOn || !waited || time.Since(start) != 7*time.Second {
			t.Errorf("a reader caught up after 7s: hold = %v, %v after %v, want true, true after 7s", goOn, waited, time.Since(start))
		}

		goOn, waited = r.hold(t.Context(), 500, 1000, ahead, 30*time.Second)
		if !goOn || waited {
			t.Errorf("needed already: hold = %v, %v, want true, false", goOn, waited)
		}
	})
}

// TestKeepGoingMaxTime: a download finished in the background after its
// last client left (quick abort) is cancelled after MaxTime, once, however
// often the decision is asked for.
func TestKeepGoingMaxTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &Proxy{
			opts: Options{QuickAbort: QuickAbort{FinishBelow: 100, MaxTime: 10 * time.Minute}},
			log:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		src := source{url: &url.URL{Scheme: "http", Host: "origin.test", Path: "/f"}, size: 1000}
		cancelled := make(chan time.Duration, 2)
		start := time.Now()
		keep := p.keepGoing(src, func() { cancelled <- time.Since(start) })
		if keep(0, 1000) {
			t.Error("keepGoing(0, 1000) = true with 1000 bytes left, want false (FinishBelow 100)")
		}
		if !keep(950, 1000) || !keep(960, 1000) {
			t.Error("keepGoing with 50 bytes left = false, want true")
		}
		time.Sleep(time.Hour)
		if n := len(cancelled); n != 1 {
			t.Fatalf("cancelled %d times in an hour, want once", n)
		}
		if at := <-cancelled; at != 10*time.Minute {
			t.Errorf("cancelled at %v, want 10m", at)
		}
	})
}
