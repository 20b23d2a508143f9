package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// do sends one upstream GET. The response body counts as dropped when it
// sends nothing for IdleTimeout. It returns when the request was sent.
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
		return nil, sent, fmt.Errorf("proxy: GET %s: %w", u.Redacted(), err)
	}
	if resp.ProtoMajor != 1 {
		conn = nil // HTTP/2 shares the connection between requests
	}
	resp.Body = newUpstreamBody(resp.Body, conn, p.opts.IdleTimeout, cancel)
	return resp, sent, nil
}

// errWoundDown: a fill stopped because its last client left, after keeping
// what the upstream had already sent.
var errWoundDown = fmt.Errorf("proxy: fill abandoned by its clients: %w", context.Canceled)

// upstreamBody wraps an upstream response body. It cancels its request when
// a Read waits longer than the idle timeout, turning a stalled upstream into
// a failed read that is resumed; and it can wind down: end at the bytes the
// kernel already holds for the connection.
type upstreamBody struct {
	io.ReadCloser
	conn   net.Conn // nil when it cannot be inspected (HTTP/2)
	timer  *time.Timer
	idle   time.Duration
	cancel context.CancelFunc
	read   atomic.Int64 // bytes returned so far
	limit  atomic.Int64 // bytes to return in all; -1 for no limit
	// start is the offset in the representation of the body's first byte,
	// set by whoever checked the response (bodyExtent, checkPartial).
	start int64
}

// at returns the offset in the representation of the next byte Read
// returns.
func (b *upstreamBody) at() int64 { return b.start + b.read.Load() }

func newUpstreamBody(rc io.ReadCloser, conn net.Conn, idle time.Duration, cancel context.CancelFunc) *upstreamBody {
	b := &upstreamBody{ReadCloser: rc, conn: conn, timer: time.AfterFunc(idle, cancel), idle: idle, cancel: cancel}
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
	b.timer.Reset(b.idle)
	n, err := b.ReadCloser.Read(p)
	b.read.Add(int64(n))
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	return n, err
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

// fillStop stops a fill when the last client of its entry leaves: it winds
// the current upstream body down, or cancels at once between bodies.
type fillStop struct {
	cancel context.CancelFunc

	// mu guards body and stopped.
	mu      sync.Mutex
	body    *upstreamBody // the body being copied; nil between attempts
	stopped bool
}

func newFillStop(cancel context.CancelFunc) *fillStop { return &fillStop{cancel: cancel} }

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
