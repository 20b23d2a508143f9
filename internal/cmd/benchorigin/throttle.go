package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// byteSize is a flag value in bytes, written as a number with an optional
// IEC suffix (K, KiB, M, MiB, G, GiB: powers of 1024), as the bench script's
// sizes are (numfmt --from=iec).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

// Set parses s; a negative or unreadable size is an error that names it.
func (b *byteSize) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

// parseByteSize reads "32MiB", "32M", "256KiB", "1G" or "1048576".
func parseByteSize(s string) (int64, error) {
	num := strings.TrimRight(s, "KMGiBkmgb")
	shift := 0
	switch strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(s[len(num):]), "B"), "I") {
	case "":
	case "K":
		shift = 10
	case "M":
		shift = 20
	case "G":
		shift = 30
	default:
		return 0, fmt.Errorf("size %q: unknown suffix (K, KiB, M, MiB, G, GiB)", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)>>shift {
		return 0, fmt.Errorf("size %q: not a non-negative number of bytes", s)
	}
	return n << shift, nil
}

// throttle limits the bodies of responses, as far-away origins do: a token
// bucket per connection (mirrors and object stores cap each connection,
// which is what makes parallel ranged requests pay) and one shared by all
// connections (a link: no number of connections gets past it). A zero rate
// is no limit. The burst is small (256 KiB by default) so that a limited
// writer cannot put much more than its rate into the socket buffers at once:
// the client sees the rate, not bursts of buffered bytes.
type throttle struct {
	connRate rate.Limit
	burst    int
	link     *rate.Limiter // nil: no shared limit
}

// newThrottle makes a throttle of connRate and linkRate bytes per second
// (0: unlimited) with burst bytes in each bucket.
func newThrottle(connRate, linkRate, burst int64) (*throttle, error) {
	if burst <= 0 && (connRate > 0 || linkRate > 0) {
		return nil, fmt.Errorf("-burst must be positive with a rate")
	}
	t := &throttle{connRate: rate.Limit(connRate), burst: int(burst)}
	if linkRate > 0 {
		t.link = rate.NewLimiter(rate.Limit(linkRate), t.burst)
	}
	return t, nil
}

// limited reports whether bodies are throttled at all; unlimited ones keep
// sendfile.
func (t *throttle) limited() bool { return t.connRate > 0 || t.link != nil }

// connLimiterKey is the context key of a connection's token bucket.
type connLimiterKey struct{}

// connContext is http.Server.ConnContext: it gives each connection its own
// bucket, shared by the requests that follow each other on it (keep-alive),
// as a per-connection limit is.
func (t *throttle) connContext(ctx context.Context, _ net.Conn) context.Context {
	if t.connRate <= 0 {
		return ctx
	}
	return context.WithValue(ctx, connLimiterKey{}, rate.NewLimiter(t.connRate, t.burst))
}

// limiters returns the buckets a body sent for r must pass, connection
// first.
func (t *throttle) limiters(r *http.Request) []*rate.Limiter {
	var ls []*rate.Limiter
	if l, ok := r.Context().Value(connLimiterKey{}).(*rate.Limiter); ok {
		ls = append(ls, l)
	}
	if t.link != nil {
		ls = append(ls, t.link)
	}
	return ls
}

// stats counts what the origin sent, for the bench script to report origin
// bytes per download and how many requests ran at once (a segmented fill
// shows as several).
type stats struct {
	bodyBytes atomic.Int64 // response body bytes written
	requests  atomic.Int64 // requests served (stats requests excepted)
	active    atomic.Int64 // requests being served now
	peak      atomic.Int64 // most active at once since the last read
}

// begin notes a request starting and returns the function that notes its
// end.
func (s *stats) begin() func() {
	s.requests.Add(1)
	n := s.active.Add(1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	return func() { s.active.Add(-1) }
}

// line formats the counters as key=value pairs (like benchclient's output)
// and starts a new peak, so that each read gives the peak since the last.
func (s *stats) line() string {
	peak := s.peak.Swap(s.active.Load())
	return fmt.Sprintf("body_bytes=%d requests=%d active=%d peak_active=%d",
		s.bodyBytes.Load(), s.requests.Load(), s.active.Load(), peak)
}

// countingWriter counts body bytes. Its ReadFrom hands the source to the
// server's own ReadFrom, so an unthrottled file body still goes out with
// sendfile (the direct figures are those of Go's file server).
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	return n, err
}

func (w countingWriter) ReadFrom(src io.Reader) (int64, error) {
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
	}
	w.n.Add(n)
	return n, err
}

// throttledWriter writes a body no faster than its buckets allow, at most
// one burst per write so that every byte waits for its tokens before it
// reaches the socket. It has no ReadFrom: a copy into it goes through
// Write in io.Copy's 32 KiB pieces.
type throttledWriter struct {
	http.ResponseWriter
	ctx      context.Context // the request's: a client that leaves ends the wait
	limiters []*rate.Limiter
	burst    int
	n        *atomic.Int64
}

func (w throttledWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), w.burst)]
		for _, l := range w.limiters {
			if err := l.WaitN(w.ctx, len(chunk)); err != nil {
				return written, fmt.Errorf("benchorigin: throttle: %w", err)
			}
		}
		n, err := w.ResponseWriter.Write(chunk)
		written += n
		w.n.Add(int64(n))
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// bodyWriter wraps w so that the body sent for r is counted in s and,
// where t limits, throttled.
func bodyWriter(w http.ResponseWriter, r *http.Request, t *throttle, s *stats) http.ResponseWriter {
	if ls := t.limiters(r); len(ls) > 0 {
		return throttledWriter{ResponseWriter: w, ctx: r.Context(), limiters: ls, burst: t.burst, n: &s.bodyBytes}
	}
	return countingWriter{ResponseWriter: w, n: &s.bodyBytes}
}
