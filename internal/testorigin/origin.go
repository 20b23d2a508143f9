// Package testorigin is an origin server for resumeproxy's tests, over plain
// HTTP or over TLS with a CA of its own: deterministic content of any size,
// RFC 9110 conditionals and single byte ranges, faults injected at byte
// offsets (dropped connections, stalls, failures, lying Content-Range, a
// file replaced mid-download) and exact accounting of the body bytes sent,
// so a test can prove that a resume fetched only what was missing. It also
// serves what real download hosts do (registry.go, signed.go, oci.go):
// PyPI, npm and Go module registries, release assets behind a redirect to
// an expiring signed URL, an OCI registry with bearer tokens and a signed
// blob store, and a Debian pool file without validators.
//
// Lock order: Origin.mu is the only lock. It is never held while writing to
// a client.
package testorigin

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Origin is an HTTP/1.1 server on 127.0.0.1, plain (New) or behind TLS
// (NewTLS), serving Resources by path. Both kinds share the handler, the
// faults and the accounting. All methods are safe for concurrent use.
type Origin struct {
	// URL is the base URL without a trailing slash: http://127.0.0.1:port,
	// or https://127.0.0.1:port for a TLS origin.
	URL string
	// Addr is the listening address, 127.0.0.1:port, for tests that dial
	// the origin themselves or map a host name to it.
	Addr string
	// CAFile is the path of a PEM file holding the CA certificate that
	// signed a TLS origin's certificate, for clients that take a file
	// (curl --cacert, pip --cert, SSL_CERT_FILE); "" for a plain origin.
	CAFile string

	tb  testing.TB
	srv *httptest.Server
	// ca is the CA of a TLS origin, nil for a plain one; never changed
	// after NewTLS returns.
	ca *x509.Certificate
	// done is closed when the origin shuts down; it releases stalled responses.
	done chan struct{}
	// signKey is the HMAC key of the origin's signed URLs and tokens
	// (signed.go); random per origin, never changed after start.
	signKey []byte

	// mu guards the fields below it.
	mu        sync.Mutex
	paths     map[string]*pathState
	bodyBytes int64
	// stallEnded, when non-nil, receives once per stalled response that was
	// released. Only this package's tests set it.
	stallEnded chan<- struct{}
	// reg is what the package indexes list (registry.go).
	reg registries
	// now is the clock of signed URLs (SetClock); nil means time.Now.
	now func() time.Time
	// signed counts SignedPath calls, so that no two credentials are alike.
	signed int
}

// pathState is everything the origin knows about one path. Guarded by Origin.mu.
type pathState struct {
	res        *Resource // nil until Set: requests get 404
	guard      guard     // answers first when set (signed.go); nil: none
	failures   []failure // FailNext answers, one per request
	bodyFaults []bodyFault
	lies       []int64 // LieContentRange shifts, one per 206
	requests   []Request
	bodyBytes  int64
	// active counts the content responses being sent; maxActive is the
	// most at once since the last ResetCounts.
	active, maxActive int

	// Lies (lies.go), each queue consumed in order.
	notModified []string     // NotModifiedWith ETags, one per GET
	partialLies []partialLie // one per 206
}

// Request is what the origin recorded of one request.
type Request struct {
	Method string
	// Header is a clone of the request header (Host is in http.Request.Host,
	// not here).
	Header http.Header
}

// New starts a plain HTTP origin on 127.0.0.1:0 that tb's cleanup closes.
// Closing releases stalled responses and cuts connections still open, so a
// test that forgets a body does not hang.
func New(tb testing.TB) *Origin {
	tb.Helper()
	return start(tb, nil)
}

// start starts an origin on 127.0.0.1:0, behind TLS when cfg is non-nil.
func start(tb testing.TB, cfg *tls.Config) *Origin {
	tb.Helper()
	o := &Origin{tb: tb, done: make(chan struct{}), paths: make(map[string]*pathState), reg: newRegistries(), signKey: make([]byte, 32)}
	_, _ = rand.Read(o.signKey) // crypto/rand.Read never fails (Go 1.24)
	// Our own listener, because httptest falls back to [::1] and the
	// origin must be reachable at 127.0.0.1 only.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testorigin: listen: %v", err)
	}
	o.srv = httptest.NewUnstartedServer(http.HandlerFunc(o.serve))
	o.srv.Listener.Close()
	// TLS wraps the small buffers, so they apply to the TCP connection.
	o.srv.Listener = smallSendBuffers{ln}
	if cfg == nil {
		o.srv.Start()
	} else {
		o.srv.TLS = cfg
		o.srv.StartTLS()
	}
	o.URL, o.Addr = o.srv.URL, ln.Addr().String()
	tb.Cleanup(o.close)
	return o
}

// close shuts the origin down: stalled handlers first, then connections, so
// that httptest.Server.Close, which waits for active requests, returns.
func (o *Origin) close() {
	close(o.done)
	o.srv.CloseClientConnections()
	o.srv.Close()
}

// Set serves r at path (which starts with "/"), replacing any earlier
// resource there. Queued faults and counts for the path are kept. Responses
// already under way continue with the resource they started with. With
// Data, a zero Size becomes len(Data) and any other mismatch fails the test.
func (o *Origin) Set(path string, r Resource) {
	o.tb.Helper()
	r, err := normalize(r)
	if err != nil {
		o.tb.Fatalf("testorigin: Set(%q): %v", path, err)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pathLocked(path).res = &r
}

// normalize checks r and returns the copy the origin keeps: Size filled in
// from Data, Data and Header cloned so the caller may reuse them.
func normalize(r Resource) (Resource, error) {
	if r.Data != nil {
		if r.Size != 0 && r.Size != int64(len(r.Data)) {
			return r, fmt.Errorf("Size = %d, want len(Data) = %d (or 0)", r.Size, len(r.Data))
		}
		r.Size = int64(len(r.Data))
		r.Data = bytes.Clone(r.Data)
	}
	if r.Size < 0 {
		return r, fmt.Errorf("Size = %d, want >= 0", r.Size)
	}
	r.Header = r.Header.Clone()
	return r, nil
}

// SetVersion changes the version of the resource at path: the file changed
// upstream, so content, ETag and Last-Modified all change.
func (o *Origin) SetVersion(path string, v int) {
	o.tb.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.pathLocked(path)
	if p.res == nil {
		o.tb.Fatalf("testorigin: SetVersion(%q): no resource at that path", path)
	}
	p.res.setVersion(v) // responses under way hold their own copy
}

// Resource returns the resource now served at path, and whether there is one.
// Its ETag and LastModified methods give the validators a client will see.
func (o *Origin) Resource(path string) (Resource, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.paths[path]
	if p == nil || p.res == nil {
		return Resource{}, false
	}
	return o.resourceLocked(path), true
}

// BodyBytes returns the content bytes written to clients on all paths: the
// bodies of 200 and 206 responses, not the short bodies of errors. Bytes are
// counted before each write and the count is corrected to what the write
// accepted, so it never lags behind what a client has received.
func (o *Origin) BodyBytes() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bodyBytes
}

// PathBodyBytes is BodyBytes for one path.
func (o *Origin) PathBodyBytes(path string) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if p := o.paths[path]; p != nil {
		return p.bodyBytes
	}
	return 0
}

// Requests returns every request for path in arrival order, including those
// that failed or found nothing. A request is recorded before any of its
// response is sent.
func (o *Origin) Requests(path string) []Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.paths[path]
	if p == nil {
		return nil
	}
	out := make([]Request, len(p.requests))
	for i, r := range p.requests {
		out[i] = Request{Method: r.Method, Header: r.Header.Clone()}
	}
	return out
}

// ResetCounts zeroes BodyBytes, every PathBodyBytes and every Requests log,
// so a test can measure one phase. Call it with no response in flight:
// bytes a running response writes afterwards are counted again.
func (o *Origin) ResetCounts() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.bodyBytes = 0
	for _, p := range o.paths {
		p.bodyBytes = 0
		p.requests = nil
		p.maxActive = p.active
	}
}

// pathLocked returns the state of path, creating it. o.mu must be held.
func (o *Origin) pathLocked(path string) *pathState {
	p := o.paths[path]
	if p == nil {
		p = &pathState{}
		o.paths[path] = p
	}
	return p
}

// resourceLocked returns a copy of the resource at path that the caller may
// keep without the lock. o.mu must be held and the resource must exist.
func (o *Origin) resourceLocked(path string) Resource {
	r := *o.paths[path].res
	r.Header = r.Header.Clone()
	return r
}

// arrive records a request for path and returns what it will get: an
// injected failure status (0 for none), else the path's guard (nil for
// none) and the resource (nil for 404).
func (o *Origin) arrive(path string, r *http.Request) (fail failure, g guard, res *Resource) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.pathLocked(path)
	p.requests = append(p.requests, Request{Method: r.Method, Header: r.Header.Clone()})
	if len(p.failures) > 0 {
		fail, p.failures = p.failures[0], p.failures[1:]
		return fail, nil, nil
	}
	if p.res == nil {
		return failure{}, p.guard, nil
	}
	c := o.resourceLocked(path)
	return failure{}, p.guard, &c
}

// count adds n body bytes for path (n may be negative, to correct a count
// made before a short write).
// MaxConcurrent returns the most responses with a body that were sent for
// path at once (since the last ResetCounts): the connections a client
// used in parallel.
func (o *Origin) MaxConcurrent(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pathLocked(path).maxActive
}

// sending counts a content response for path in (d 1) or out (d -1).
func (o *Origin) sending(path string, d int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.pathLocked(path)
	p.active += d
	p.maxActive = max(p.maxActive, p.active)
}

func (o *Origin) count(path string, n int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.bodyBytes += n
	o.pathLocked(path).bodyBytes += n
}

// stallEndedChan returns the channel to tell of a released stall, or nil.
func (o *Origin) stallEndedChan() chan<- struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stallEnded
}

// bumpVersion increments the version of the resource at path, if any.
func (o *Origin) bumpVersion(path string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.pathLocked(path)
	if p.res != nil {
		p.res.setVersion(p.res.Version + 1) // responses under way hold their own copy
	}
}

// sendBuffer is the origin's socket send buffer. It is fixed (Linux would
// autotune it to 4 MiB on loopback) so that BodyBytes, which counts what
// the origin hands to its kernel, is within this much of what left it: a
// proxy that stops reading is charged for its own buffers, not the origin's.
const sendBuffer = 256 << 10

// smallSendBuffers gives every accepted connection a sendBuffer-sized send
// buffer.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(sendBuffer) // best effort: the count stays exact either way
	}
	return c, err
}
