package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
)

// Where an upstream exchange failed decides what to do next (retryable):
// no response at all (dialError), a status instead of the body
// (statusError), or a body that failed mid-way (bodyError).
type (
	// dialError: the request got no response: the connection, the TLS
	// handshake or the request failed, or no header came in time.
	dialError struct{ err error }
	// bodyError: a body failed after at bytes of the representation were
	// received: a dropped connection, or nothing for the idle timeout
	// (errIdle).
	bodyError struct {
		at  int64
		err error
	}
)

func (e *dialError) Error() string { return "proxy: upstream request: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func (e *bodyError) Error() string {
	return fmt.Sprintf("proxy: upstream body failed at byte %d: %v", e.at, e.err)
}
func (e *bodyError) Unwrap() error { return e.err }

// errIdle: an upstream body sent nothing for the idle timeout. It is an
// upstream failure like a drop, never a cancellation: a fill that ends with
// it was not abandoned by its clients, and its readers must not claim the
// gap again with a fresh retry budget.
var errIdle = errors.New("proxy: upstream sent nothing for the idle timeout")

// retryable decides whether another attempt may get the bytes after err. A
// dial failure, a mid-body drop or stall, a short or mismatched 206, or a
// status that says "later" (5xx, 429, 408; RFC 9110 §15.6, RFC 6585 §4) is
// retried within the budget. A status that is the resource's answer (404,
// 403, ...), a changed resource, or a failure of our own storage is final:
// asking again would get the same.
func retryable(err error) bool {
	var se *statusError
	switch {
	case errors.Is(err, errChanged), errors.Is(err, errMisplaced), errors.Is(err, errNoRanges),
		errors.Is(err, cache.ErrObsolete), errors.Is(err, cache.ErrStorage):
		return false
	case errors.As(err, &se):
		return se.code >= 500 || se.code == http.StatusTooManyRequests || se.code == http.StatusRequestTimeout
	}
	return true
}

// gone reports whether err is an upstream answer that the resource no
// longer exists (404, 410): its stored bytes are of nothing current.
func gone(err error) bool {
	var se *statusError
	return errors.As(err, &se) && (se.code == http.StatusNotFound || se.code == http.StatusGone)
}

// idleTimeout is how long an upstream body may send nothing: IdleTimeout,
// but never longer than the retry window, which bounds how long a download
// may go without a byte (a client would otherwise wait for the idle
// timeout with no retry left to make).
func (p *Proxy) idleTimeout() time.Duration {
	return min(p.opts.IdleTimeout, p.opts.Retry.MaxElapsed)
}

// do sends one upstream GET. The response body counts as dropped when it
// sends nothing for idleTimeout. It returns when the request was sent;
// a failure before any response is a *dialError.
func (p *Proxy) do(ctx context.Context, u *url.URL, h http.Header) (*http.Response, time.Time, error) {
	actx, cancel := context.WithCancel(ctx)
	var conn net.Conn
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { conn = i.Conn }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(actx, trace), http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return nil, time.Time{}, fmt.Errorf("proxy: build upstream request: %w", err)
	}
	req.Header = h
	sent := p.now()
	resp, err := p.opts.Transport.RoundTrip(req)
	if err != nil {
		cancel()
		if ctx.Err() == nil {
			p.upstreamFailed(UpstreamDial, u, err)
		}
		return nil, sent, &dialError{fmt.Errorf("GET %s: %w", u.Redacted(), err)}
	}
	if resp.ProtoMajor != 1 {
		conn = nil // HTTP/2 shares the connection between requests
	}
	if retryable(&statusError{code: resp.StatusCode}) {
		p.upstreamFailed(UpstreamStatus, u, &statusError{code: resp.StatusCode})
	}
	ub := newUpstreamBody(resp.Body, conn, p.idleTimeout(), cancel, p.now)
	ub.p, ub.url = p, u
	resp.Body = ub
	return resp, sent, nil
}

// errWoundDown: a fill stopped because its last client left, after keeping
// what the upstream had already sent.
var errWoundDown = fmt.Errorf("proxy: fill abandoned by its clients: %w", context.Canceled)

// upstreamBody wraps an upstream response body. It cancels its request when
// one Read waits longer than the idle timeout, turning a stalled upstream into
// a failed read (errIdle) that is resumed; and it can wind down: end at the
// bytes the kernel already holds for the connection. Its read errors,
// other than io.EOF and winding down, are *bodyErrors.
type upstreamBody struct {
	io.ReadCloser
	conn   net.Conn // nil when it cannot be inspected (HTTP/2)
	timer  *time.Timer
	idle   time.Duration
	cancel context.CancelFunc
	idled  atomic.Bool  // set when the idle timer cancelled the request
	read   atomic.Int64 // bytes returned so far
	limit  atomic.Int64 // bytes to return in all; -1 for no limit
	// start is the offset in the representation of the body's first byte,
	// set by whoever checked the response (bodyExtent, checkPartial).
	start int64
	// now is the clock; lastByte is when Read last returned bytes (the
	// response's arrival before that). Both belong to the reading
	// goroutine.
	now      func() time.Time
	lastByte time.Time
	// p and url, when set, report bytes and failures to p's Observer.
	p   *Proxy
	url *url.URL
}

// at returns the offset in the representation of the next byte Read
// returns.
func (b *upstreamBody) at() int64 { return b.start + b.read.Load() }

func newUpstreamBody(rc io.ReadCloser, conn net.Conn, idle time.Duration, cancel context.CancelFunc, now func() time.Time) *upstreamBody {
	b := &upstreamBody{ReadCloser: rc, conn: conn, idle: idle, cancel: cancel, now: now, lastByte: now()}
	b.timer = time.AfterFunc(idle, func() {
		b.idled.Store(true)
		cancel()
	})
	b.timer.Stop() // armed by each Read
	b.limit.Store(-1)
	return b
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	if lim := b.limit.Load(); lim >= 0 {
		left := lim - b.read.Load()
		if left <= 0 {
			return 0, errWoundDown
		}
		p = p[:min(int64(len(p)), left)]
	}
	// The timer runs only while Read waits: time the reader spends
	// elsewhere (writing to disk or to a slow client, or pausing) is not
	// the upstream's silence.
	b.timer.Reset(b.idle)
	n, err := b.ReadCloser.Read(p)
	b.timer.Stop()
	b.read.Add(int64(n))
	if n > 0 {
		b.lastByte = b.now()
		if b.p != nil {
			b.p.obs.UpstreamBytes(int64(n))
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		if b.idled.Load() {
			err = errIdle // the transport reports our cancellation
		}
		b.report(err)
		err = &bodyError{at: b.at(), err: err}
	}
	return n, err
}

// report tells the Observer of a failed read: a drop or a stall, not
// our own cancellation (a client left, a fill wound down).
func (b *upstreamBody) report(err error) {
	switch {
	case b.p == nil:
	case errors.Is(err, errIdle):
		b.p.upstreamFailed(UpstreamIdle, b.url, err)
	case !errors.Is(err, context.Canceled):
		b.p.upstreamFailed(UpstreamDrop, b.url, err)
	}
}

func (b *upstreamBody) Close() error {
	b.timer.Stop()
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// transportSlack bounds what the transport may hold in its read buffer
// beyond the kernel's count (NewTransport's ReadBufferSize).
const transportSlack = upstreamReadBuffer

// windDownGrace bounds how long winding down may wait for a byte.
const windDownGrace = 50 * time.Millisecond

// windDown makes the body end after the bytes already received: the origin
// has sent them, so dropping them would only make the next request fetch
// them again (socket buffers autotune to many MiB on fast links). It reports
// false when the connection cannot be inspected.
func (b *upstreamBody) windDown() bool {
	if b.conn == nil {
		return false
	}
	n, ok := kernelBuffered(b.conn)
	if !ok {
		return false
	}
	b.limit.Store(b.read.Load() + n + transportSlack)
	// Never wait for more than what is there. Not a read deadline on the
	// connection: a body already read to its end has handed the connection
	// back to the transport's pool, and a deadline would break whichever
	// request uses it next. Cancelling this request's context closes the
	// connection only while this body still holds it.
	time.AfterFunc(windDownGrace, b.cancel)
	return true
}
