package proxy

// Regression tests for the upstream flow (issue 9): relays tied to their
// client, retry decisions by where a failure happened, flushing, and fills
// bounded by what their readers take.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/internal/testorigin"
	"github.com/resumeproxy/resumeproxy/proxy/policy"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// TestRelayEndsWithClient: a relayed (not stored) body's upstream request
// ended only at the upstream idle timeout, or never for an upstream that
// kept sending slowly, after its client had gone: relays outlived their
// clients by minutes. Now the client's departure cancels it at once. The
// pass-through (a request that bypasses the cache) is checked alike.
func TestRelayEndsWithClient(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		for _, c := range []struct {
			name         string
			cacheControl string // of the response
			hdr          []string
		}{
			{"no-store response", "no-store", nil},
			{"no-store request", "max-age=60", []string{"Cache-Control: no-store"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				h := newSchemeHarness(t, s) // upstream idle timeout: 1 minute
				const size = 8 * mib
				u := h.set("/f", testorigin.Resource{Size: size, CacheControl: c.cacheControl})
				stalled := h.origin.StallAt("/f", 2*mib)
				resp := h.openBody(u, c.hdr...)
				// Close to the stall, so that the proxy has nothing left to
				// write and only the client's departure can end the relay.
				if n, err := io.CopyN(io.Discard, resp.Body, 2*mib-64<<10); err != nil {
					t.Fatalf("client read %d bytes: %v", n, err)
				}
				resp.Body.Close()
				left := time.Now()
				select {
				case <-stalled:
					t.Logf("origin's response ended %v after the client left", time.Since(left).Round(time.Millisecond))
				case <-time.After(5 * time.Second):
					t.Fatalf("origin's response still open 5s after its only client left")
				}
			})
		}
	})
}

// startGet fetches u through the proxy in the background, reading the
// whole body; the result arrives on the channel. It never fails the test
// itself (its goroutine may outlive a failed test).
func (h *harness) startGet(u string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		resp, err := h.client.Get(u)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer resp.Body.Close()
		sum := sha256.New()
		n, err := io.Copy(sum, resp.Body)
		ch <- result{status: resp.StatusCode, header: resp.Header, n: n, sum: hex.EncodeToString(sum.Sum(nil)), err: err}
	}()
	return ch
}

// withOpts restarts h's proxy with opts changed by set.
func (h *harness) withOpts(set func(o *Options)) {
	h.stop()
	set(&h.opts)
	h.start()
}

// waitOriginBytes waits until the origin has sent at least n body bytes
// of path.
func (h *harness) waitOriginBytes(path string, n int64) {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for h.origin.PathBodyBytes(path) < n {
		if time.Now().After(deadline) {
			h.t.Fatalf("origin sent %d bytes of %s in 30s, want %d", h.origin.PathBodyBytes(path), path, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestStalledUpstreamCutsClientAfterRetryWindow: an upstream that stalls
// whenever it is asked held the client for ever. The idle timeout cancelled
// the upstream request, the fill ended as context.Canceled, was logged as
// abandoned by its clients while its client was still there, and was
// claimed again with a fresh retry budget. Now a stall is an upstream
// failure, and the client is cut once upstream.retry_window has passed
// without a byte, also when the idle timeout is longer than the window.
func TestStalledUpstreamCutsClientAfterRetryWindow(t *testing.T) {
	const window = time.Second
	for _, c := range []struct {
		name string
		idle time.Duration
	}{
		{"idle-below-window", 200 * time.Millisecond},
		{"idle-above-window", time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.withOpts(func(o *Options) {
				o.IdleTimeout = c.idle
				o.Retry = Retry{Attempts: 1000, MaxElapsed: window, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
			})
			const size = 4 * mib
			u := h.set("/f", testorigin.Resource{Size: size})
			for range 1000 { // every response stalls at 1 MiB (resumptions at once)
				h.origin.StallAt("/f", mib)
			}
			start := time.Now()
			var r result
			select {
			case r = <-h.startGet(u):
			case <-time.After(10 * window):
				t.Fatalf("client still held %v after the upstream stalled, with retry_window %v", 10*window, window)
			}
			took := time.Since(start)
			t.Logf("client cut after %v, %d bytes; origin saw %d requests", took.Round(time.Millisecond), r.n, len(h.origin.Requests("/f")))
			if r.err == nil {
				t.Errorf("client got a clean body of %d bytes, want a cut connection", r.n)
			}
			if took > 3*window {
				t.Errorf("client cut after %v, want within about retry_window (%v)", took, window)
			}
			if n := h.logs.count("abandoned"); n != 0 {
				t.Errorf("the log says %d times that the download was abandoned; its client was there", n)
			}
		})
	}
}

// TestUpstreamStatusDuringContinuation: a final status (404) answering a
// resumption was retried like a 503, holding the client for the whole
// retry budget (36s with the defaults) for a resource that is gone. Now a
// final status cuts the client at once, and a retryable one (503, 429) is
// retried.
func TestUpstreamStatusDuringContinuation(t *testing.T) {
	for _, c := range []struct {
		status   int
		retried  bool
		requests int
	}{
		{http.StatusNotFound, false, 2},
		{http.StatusGone, false, 2},
		{http.StatusServiceUnavailable, true, 3},
		{http.StatusTooManyRequests, true, 3},
	} {
		t.Run(strconv.Itoa(c.status), func(t *testing.T) {
			h := newHarness(t)
			h.withOpts(func(o *Options) {
				o.IdleTimeout = time.Second
				o.Retry = Retry{Attempts: 8, MaxElapsed: time.Minute, InitialBackoff: 500 * time.Millisecond, MaxBackoff: 10 * time.Second}
			})
			const size = 4 * mib
			u := h.set("/f", testorigin.Resource{Size: size})
			h.origin.StallAt("/f", mib) // ends at the idle timeout: then the fill resumes
			got := h.startGet(u)
			h.waitOriginBytes("/f", mib)
			h.origin.FailNext("/f", c.status, 1) // the answer to the resumption
			r := <-got
			if c.retried {
				wantBody(t, "download", r, 200, 0, 0, size)
			} else if r.err == nil {
				t.Errorf("client got a clean body of %d bytes, want a cut connection", r.n)
			}
			if n := len(h.origin.Requests("/f")); n != c.requests {
				t.Errorf("origin saw %d requests, want %d", n, c.requests)
			}
		})
	}
}

// TestRetryable: the retry decision by where an upstream failure happened.
func TestRetryable(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"dial", &dialError{errors.New("connection refused")}, true},
		{"mid-body drop", &bodyError{at: 7, err: io.ErrUnexpectedEOF}, true},
		{"stall", &bodyError{at: 7, err: errIdle}, true},
		{"short 206", errShort, true},
		{"mismatched 206", fmt.Errorf("%w: got 0-9", policy.ErrBadRange), true},
		{"500", &statusError{code: 500}, true},
		{"503", &statusError{code: 503}, true},
		{"429", &statusError{code: 429}, true},
		{"408", &statusError{code: 408}, true},
		{"404", &statusError{code: 404}, false},
		{"410", &statusError{code: 410}, false},
		{"403", &statusError{code: 403}, false},
		{"changed", fmt.Errorf("%w: upstream answered 412", errChanged), false},
		{"misplaced", errMisplaced, false},
		{"storage", fmt.Errorf("write: %w", cache.ErrStorage), false},
		{"obsolete", cache.ErrObsolete, false},
		{"giving up on a 404", fmt.Errorf("proxy: giving up: %w", &statusError{code: 404}), false},
	} {
		if got := retryable(c.err); got != c.want {
			t.Errorf("retryable(%s: %v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// firstBytes is what a client had of a response within a time limit.
type firstBytes struct {
	header http.Header
	status int
	got    []byte
	err    error
}

// readFirst starts a GET of u through the proxy and returns what the
// client has within limit: the headers, and n body bytes (fewer if the
// limit passed first). The request ends with the test.
func (h *harness) readFirst(u string, n int, limit time.Duration, hdr ...string) firstBytes {
	h.t.Helper()
	req, err := http.NewRequestWithContext(h.t.Context(), http.MethodGet, u, nil)
	if err != nil {
		h.t.Fatalf("NewRequest: %v", err)
	}
	for _, line := range hdr {
		k, v, _ := strings.Cut(line, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	heads := make(chan firstBytes, 1)
	body := make(chan []byte, n)
	go func() {
		defer close(body)
		resp, err := h.client.Do(req)
		if err != nil {
			heads <- firstBytes{err: err}
			return
		}
		defer resp.Body.Close()
		heads <- firstBytes{header: resp.Header, status: resp.StatusCode}
		buf := make([]byte, n)
		for got := 0; got < n; {
			m, err := resp.Body.Read(buf[:n-got])
			got += m
			body <- append([]byte(nil), buf[:m]...)
			if err != nil {
				return
			}
		}
	}()
	timeout := time.After(limit)
	var fb firstBytes
	select {
	case fb = <-heads:
	case <-timeout:
		return firstBytes{err: fmt.Errorf("no response headers within %v", limit)}
	}
	for len(fb.got) < n && fb.err == nil {
		select {
		case b, ok := <-body:
			if !ok {
				fb.err = fmt.Errorf("body ended after %d bytes", len(fb.got))
			}
			fb.got = append(fb.got, b...)
		case <-timeout:
			fb.err = fmt.Errorf("%d body bytes within %v, want %d", len(fb.got), limit, n)
		}
	}
	return fb
}

// TestSlowUpstreamIsFlushed: nothing was flushed while an upstream paused:
// with an origin that sent its headers and 10 bytes and then nothing, the
// client had neither, on every path (cached, relayed, passed through,
// server-sent events), so event streams, long polls and clients with a
// first-byte timeout broke. Now headers and bytes go out when the proxy
// would wait for more.
func TestSlowUpstreamIsFlushed(t *testing.T) {
	const limit = 2 * time.Second // "within about a second", with room for -race on a busy machine
	eventStream := testorigin.Resource{Size: mib, CacheControl: "no-cache", Chunked: true,
		Header: http.Header{"Content-Type": {"text/event-stream"}}}
	schemes(t, func(t *testing.T, s scheme) {
		for _, c := range []struct {
			name string
			res  testorigin.Resource
			hdr  []string
			drip bool // the origin sends 10 bytes every 100ms, else 10 bytes then stalls
			want string
		}{
			{"cached", testorigin.Resource{Size: mib, CacheControl: "max-age=60"}, nil, false, xMiss},
			{"cached drip", testorigin.Resource{Size: mib, CacheControl: "max-age=60"}, nil, true, xMiss},
			{"no-store relay", testorigin.Resource{Size: mib, CacheControl: "no-store"}, nil, false, xMiss},
			{"no-store relay drip", testorigin.Resource{Size: mib, CacheControl: "no-store"}, nil, true, xMiss},
			{"pass-through", testorigin.Resource{Size: mib}, []string{"Cache-Control: no-store"}, false, xMiss},
			{"event stream", eventStream, nil, false, xMiss},
			{"event stream headers", eventStream, nil, false, xMiss},
		} {
			t.Run(c.name, func(t *testing.T) {
				h := newSchemeHarness(t, s) // upstream idle timeout: 1 minute
				u := h.set("/f", c.res)
				n := 10
				switch {
				case c.drip:
					h.origin.Drip("/f", 10, 100*time.Millisecond)
					n = 30
				case strings.HasSuffix(c.name, "headers"):
					h.origin.StallAt("/f", 0) // headers, then nothing
					n = 0
				default:
					h.origin.StallAt("/f", 10)
				}
				start := time.Now()
				fb := h.readFirst(u, n, limit, c.hdr...)
				if fb.err != nil {
					t.Fatalf("client of a paused upstream: %v", fb.err)
				}
				t.Logf("client had the headers and %d bytes after %v", len(fb.got), time.Since(start).Round(time.Millisecond))
				if fb.status != http.StatusOK || fb.header.Get("X-Cache") != c.want {
					t.Errorf("status %d, X-Cache %q; want 200, %s", fb.status, fb.header.Get("X-Cache"), c.want)
				}
				if want, _ := io.ReadAll(testorigin.NewReader(0, 0, int64(n))); !bytes.Equal(fb.got, want) {
					t.Errorf("first %d bytes differ from the origin's", n)
				}
			})
		}
	})
}

// stingyClient returns a client through h's proxy whose connections have a
// small receive buffer, so that a client that stops reading stops taking
// bytes soon (the kernel would otherwise take several MiB on loopback).
func (h *harness) stingyClient() *http.Client {
	tr := h.client.Transport.(*http.Transport).Clone()
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(64 << 10) // best effort: the bound below has room
		}
		return c, err
	}
	h.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// smallUpstreamBuffers makes the proxy's upstream connections keep a small
// receive buffer: Linux autotunes it up to tcp_rmem's maximum (32 MiB
// here), which a test of how far a fill runs would otherwise count.
func (h *harness) smallUpstreamBuffers(o *Options) {
	tr, ok := o.Transport.(*http.Transport)
	if !ok {
		tr = NewTransport()
	}
	tr = tr.Clone()
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(256 << 10)
		}
		return c, err
	}
	o.Transport = tr
}

// originSettles waits until the origin has sent nothing more of path for
// quiet (at most 30s) and returns what it sent.
func (h *harness) originSettles(path string, quiet time.Duration) int64 {
	h.t.Helper()
	last, since := h.origin.PathBodyBytes(path), time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		n := h.origin.PathBodyBytes(path)
		if n != last {
			last, since = n, time.Now()
		}
		if time.Since(since) >= quiet {
			return n
		}
	}
	h.t.Fatalf("origin still sending %s after 30s (%d bytes)", path, last)
	return 0
}

// fillSlack is what may be fetched past FillAhead when a reader takes
// nothing: what the proxy's send buffer to the client takes (autotuned up
// to 4 MiB), the socket buffers between origin and proxy (small, by
// smallUpstreamBuffers), and one fill buffer.
const fillSlack = 8 * mib

// TestClientThatReadsNothing: a client that read nothing made the proxy
// fetch and hold its whole download, outside max_size, for as long as its
// socket stayed open. Now the fill stops FillAhead past what the client
// took, the client's writes time out, it is cut, and the bytes fetched
// stay for the next request.
func TestClientThatReadsNothing(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		h := newSchemeHarness(t, s)
		const ahead, timeout = 4 * mib, time.Second
		h.withOpts(func(o *Options) {
			o.FillAhead, o.ClientWriteTimeout = ahead, timeout
			h.smallUpstreamBuffers(o)
		})
		const size = 64 * mib
		u := h.set("/f", testorigin.Resource{Size: size, CacheControl: "max-age=600"})
		resp, err := h.stingyClient().Get(u)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		defer resp.Body.Close()
		sent := h.originSettles("/f", 500*time.Millisecond)
		t.Logf("origin sent %.1f MiB to a client that read nothing", float64(sent)/mib)
		if sent > ahead+fillSlack {
			t.Fatalf("origin sent %d bytes for a client that read nothing, want ≤ %d (fill_ahead %d + buffers)", sent, ahead+fillSlack, int64(ahead))
		}
		time.Sleep(3 * timeout) // the proxy's writes time out meanwhile
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil {
			t.Fatalf("client that read nothing for %v got a clean body of %d bytes, want a cut", 3*timeout, n)
		}
		t.Logf("client cut after %d bytes: %v", n, err)
		h.origin.ResetCounts()
		r := h.get(u)
		wantBody(t, "next client", r, 200, 0, 0, size)
		wantXCache(t, "next client", r, xPartial)
		if again := h.origin.BodyBytes(); again >= size {
			t.Errorf("origin sent %d bytes to the next client, want fewer than %d: the bytes fetched stay", again, int64(size))
		}
	})
}

// TestSlowReaderCatchesUp: a fill paused FillAhead past its only reader
// goes on when the reader catches up: on the connection it held, or, after
// a pause longer than the idle timeout, by asking for the rest with Range.
// The client gets the whole body, and the origin sends it once, plus, for
// each connection dropped, what that connection had buffered.
func TestSlowReaderCatchesUp(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		for _, c := range []struct {
			name    string
			idle    time.Duration
			dropped bool
		}{
			{"connection held", time.Minute, false},
			{"connection dropped", 200 * time.Millisecond, true},
		} {
			t.Run(c.name, func(t *testing.T) {
				h := newSchemeHarness(t, s)
				const ahead = 4 * mib
				h.withOpts(func(o *Options) {
					o.FillAhead, o.IdleTimeout = ahead, c.idle
					h.smallUpstreamBuffers(o)
				})
				const size = 48 * mib
				u := h.set("/f", testorigin.Resource{Size: size, CacheControl: "max-age=600"})
				resp, err := h.stingyClient().Get(u)
				if err != nil {
					t.Fatalf("GET: %v", err)
				}
				defer resp.Body.Close()
				if sent := h.originSettles("/f", 500*time.Millisecond); sent > ahead+fillSlack {
					t.Fatalf("origin sent %d bytes before the client read, want ≤ %d", sent, ahead+fillSlack)
				}
				sum := sha256.New()
				n, err := io.Copy(sum, resp.Body)
				wantBody(t, "slow reader", result{status: resp.StatusCode, n: n, sum: hex.EncodeToString(sum.Sum(nil)), err: err}, 200, 0, 0, size)
				sent, requests := h.origin.BodyBytes(), int64(len(h.origin.Requests("/f")))
				t.Logf("origin sent %d bytes more than the file, in %d requests", sent-size, requests)
				// A dropped connection costs what its socket buffers held
				// (256 KiB each way, smallUpstreamBuffers) and the
				// transport's: well under 2 MiB.
				if sent < size || sent > size+(requests-1)*2*mib {
					t.Errorf("origin sent %d body bytes in %d requests, want %d plus at most 2 MiB per dropped connection", sent, requests, int64(size))
				}
				if dropped := requests > 1; dropped != c.dropped {
					t.Errorf("origin saw %d requests; want the paused connection dropped: %v", requests, c.dropped)
				}
			})
		}
	})
}

// TestNeeded: whether a fill at pos (its span ending at end) runs, given
// what its readers have left to send.
func TestNeeded(t *testing.T) {
	const ahead = 10
	rd := func(spans ...rangeutil.Range) map[*entryBody]rangeutil.Range {
		m := map[*entryBody]rangeutil.Range{}
		for _, s := range spans {
			m[&entryBody{}] = s
		}
		return m
	}
	r := func(a, b int64) rangeutil.Range { return rangeutil.Range{Start: a, End: b} }
	for _, c := range []struct {
		name     string
		at       map[*entryBody]rangeutil.Range
		pos, end int64
		want     bool
	}{
		{"no readers (background finish)", rd(), 50, 100, true},
		{"reader within ahead", rd(r(45, 100)), 50, 100, true},
		{"reader exactly ahead behind", rd(r(40, 100)), 50, 100, true},
		{"reader further behind", rd(r(39, 100)), 50, 100, false},
		{"reader waiting ahead of the fill", rd(r(70, 100)), 50, 100, true},
		{"reader beyond the span", rd(r(100, 200)), 50, 100, false},
		{"reader done with these bytes", rd(r(45, 50)), 50, 100, false},
		{"slow and fast reader", rd(r(0, 100), r(45, 100)), 50, 100, true},
		{"two slow readers", rd(r(0, 100), r(20, 100)), 50, 100, false},
		{"finished reader", rd(r(100, 100)), 50, 100, false},
	} {
		if got := needed(c.at, c.pos, c.end, ahead); got != c.want {
			t.Errorf("needed(%s, pos %d, end %d, ahead %d) = %v, want %v", c.name, c.pos, c.end, ahead, got, c.want)
		}
	}
}
