package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/internal/access"
	"github.com/resumeproxy/resumeproxy/internal/ca"
	"github.com/resumeproxy/resumeproxy/internal/keyrule"
	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

// harness is a proxy on a real 127.0.0.1 listener in front of a
// fault-injecting origin, and a client that goes through it.
type harness struct {
	t      *testing.T
	origin *testorigin.Origin
	// base is what URLs of the origin start with: its own URL over plain
	// HTTP, https://origin.test (reached through interception) over TLS.
	base string
	// clientTLS is the client's TLS config over HTTPS: it trusts our CA.
	clientTLS *tls.Config
	// auth and leaves are the interception CA and its certificates, names
	// the host names the proxy dials to a local address (HTTPS harness
	// only).
	auth   *ca.Authority
	leaves *ca.Leaves
	names  map[string]string
	// caFile is the interception CA's certificate in PEM, for real clients
	// to trust (pip --cert, npm --cafile, SSL_CERT_FILE); HTTPS harness only.
	caFile string
	dir    string
	opts   Options
	store  *cache.Store
	proxy  *Proxy
	srv    *http.Server
	ln     net.Listener
	client *http.Client
	// spaceLeft is how many body bytes the disk still takes; once they are
	// used, writes and syncs fail with ENOSPC. Negative: unlimited.
	spaceLeft atomic.Int64
	// logs holds everything the proxy logged.
	logs *logBuffer
	// listening, when set, runs once the proxy's listener is open (h.ln)
	// and before the proxy starts: to configure h.opts with its address.
	listening func(h *harness)
}

// fastRetry keeps resumption tests quick: short pauses, a few attempts.
var fastRetry = Retry{Attempts: 4, MaxElapsed: time.Minute, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarnessUnstarted(t, testorigin.New(t))
	h.start()
	return h
}

func newHarnessUnstarted(t *testing.T, o *testorigin.Origin) *harness {
	h := &harness{t: t, origin: o, base: o.URL, dir: t.TempDir(), logs: &logBuffer{}}
	// One connection per download: these tests drive single fills byte by
	// byte (stalls, drops, quick abort at an offset); segment_test.go
	// tests downloads split over several.
	h.opts = Options{Retry: fastRetry, IdleTimeout: time.Minute, Logger: testLogger(t, h.logs), Rules: keyrule.Default(),
		Segments: Segments{PerDownload: 1}}
	h.spaceLeft.Store(-1)
	t.Cleanup(h.stop)
	return h
}

// scheme names a way for clients to reach the origin through the proxy.
type scheme string

const (
	plainHTTP   scheme = "http"
	intercepted scheme = "https" // HTTPS through --mitm interception
)

// schemes runs test once over plain HTTP and once over HTTPS through
// interception: downloads must behave the same either way (issue 8).
func schemes(t *testing.T, test func(t *testing.T, s scheme)) {
	for _, s := range []scheme{plainHTTP, intercepted} {
		t.Run(string(s), func(t *testing.T) { test(t, s) })
	}
}

// newSchemeHarness is newHarness for s.
func newSchemeHarness(t *testing.T, s scheme) *harness {
	t.Helper()
	if s == intercepted {
		return newTLSHarness(t)
	}
	return newHarness(t)
}

func testLogger(t *testing.T, logs *logBuffer) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("RESUMEPROXY_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t, logs}, &slog.HandlerOptions{Level: level}))
}

// tWriter sends log lines to the test log and keeps them for assertions.
type tWriter struct {
	t    *testing.T
	logs *logBuffer
}

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	if strings.Contains(string(p), "handler panicked") {
		w.t.Errorf("the proxy panicked serving a request (see the log above)")
	}
	w.logs.add(string(p))
	return len(p), nil
}

type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBuffer) add(line string) {
	b.mu.Lock()
	b.lines = append(b.lines, line)
	b.mu.Unlock()
}

// count returns how many lines contain s.
func (b *logBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, l := range b.lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// faultyFile fails writes and syncs with ENOSPC once its harness's disk
// has no space left.
type faultyFile struct {
	cache.File
	h *harness
}

func (f faultyFile) WriteAt(p []byte, off int64) (int, error) {
	for {
		left := f.h.spaceLeft.Load()
		if left < 0 {
			return f.File.WriteAt(p, off)
		}
		if left < int64(len(p)) {
			f.h.spaceLeft.Store(0)
			return 0, &os.PathError{Op: "write", Path: "body", Err: syscall.ENOSPC}
		}
		if f.h.spaceLeft.CompareAndSwap(left, left-int64(len(p))) {
			return f.File.WriteAt(p, off)
		}
	}
}

func (f faultyFile) Sync() error {
	if f.h.spaceLeft.Load() == 0 {
		return &os.PathError{Op: "sync", Path: "body", Err: syscall.ENOSPC}
	}
	return f.File.Sync()
}

func (h *harness) start() {
	h.t.Helper()
	store, err := cache.Open(h.dir, cache.Options{
		CheckpointBytes: 1 << 20,
		Logger:          h.opts.Logger,
		WrapFile:        func(f cache.File) cache.File { return faultyFile{f, h} },
	})
	if err != nil {
		h.t.Fatalf("cache.Open: %v", err)
	}
	h.store = store
	// Listen first, as main does: the proxy knows its own address.
	h.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatalf("listen: %v", err)
	}
	if h.listening != nil {
		h.listening(h)
	}
	opts := h.opts
	opts.Store = store
	if opts.Self == nil {
		opts.Self = access.SelfAddrs(netip.MustParseAddrPort(h.ln.Addr().String()), nil)
	}
	h.proxy = New(opts)
	h.srv = NewServer(h.proxy)
	go h.srv.Serve(h.ln)
	pu, _ := url.Parse("http://" + h.ln.Addr().String())
	h.client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), DisableCompression: true, TLSClientConfig: h.clientTLS}}
}

func (h *harness) stop() {
	if h.srv == nil {
		return
	}
	h.client.CloseIdleConnections()
	h.srv.Close()
	h.proxy.Close()
	if err := h.store.Close(); err != nil {
		h.t.Errorf("store.Close: %v", err)
	}
	h.srv = nil
}

// restart stops the proxy and starts a new one on the same cache directory.
func (h *harness) restart() {
	h.stop()
	h.start()
}

// set registers a resource and returns its URL.
func (h *harness) set(path string, r testorigin.Resource) string {
	h.origin.Set(path, r)
	return h.base + path
}

// result is what a client got.
type result struct {
	status int
	header http.Header
	n      int64
	sum    string
	err    error // error reading the body (a cut connection)
}

// get fetches url through the proxy with extra header lines "Name: value",
// reading the whole body.
func (h *harness) get(u string, hdr ...string) result {
	return h.getN(u, -1, hdr...)
}

// openBody starts a GET of u through the proxy with extra header lines
// "Name: value" and returns the response with its body unread; the test
// closes it.
func (h *harness) openBody(u string, hdr ...string) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		h.t.Fatalf("NewRequest: %v", err)
	}
	for _, line := range hdr {
		k, v, _ := strings.Cut(line, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("GET %s: %v", u, err)
	}
	return resp
}

// getN reads at most limit bytes of the body (all when limit < 0), then
// closes it: limit ≥ 0 is a client that abandons the download.
func (h *harness) getN(u string, limit int64, hdr ...string) result {
	h.t.Helper()
	resp := h.openBody(u, hdr...)
	defer resp.Body.Close()
	return readResultN(resp, limit)
}

// readResult reads resp's whole body.
func readResult(resp *http.Response) result { return readResultN(resp, -1) }

// readResultN reads at most limit bytes of resp's body (all when limit <
// 0).
func readResultN(resp *http.Response, limit int64) result {
	var body io.Reader = resp.Body
	if limit >= 0 {
		body = io.LimitReader(resp.Body, limit)
	}
	sum := sha256.New()
	n, err := io.Copy(sum, body)
	return result{status: resp.StatusCode, header: resp.Header, n: n, sum: hex.EncodeToString(sum.Sum(nil)), err: err}
}

// abandon makes a client read clientBytes of u and leave while the
// origin holds the response at fillStop, so the entry is left with exactly
// [0, fillStop) whatever the relative speed of proxy and client.
func (h *harness) abandon(u, path string, clientBytes, fillStop int64) {
	h.t.Helper()
	stalled := h.origin.StallAt(path, fillStop)
	if r := h.getN(u, clientBytes); r.n != clientBytes {
		h.t.Fatalf("abandoning client read %d bytes, want %d", r.n, clientBytes)
	}
	// The proxy stops the fill once it sees the client gone; until then a
	// new client would join the stalled fill and wait for the idle timeout.
	select {
	case <-stalled:
	case <-time.After(30 * time.Second):
		h.t.Fatalf("the proxy kept fetching %s 30s after its only client left", path)
	}
}

// exhaustRetriesAt makes the next download of path drop at off, and every
// resumption drop right after its headers, until fastRetry is spent: the
// client is cut and the entry keeps [0, off).
func (h *harness) exhaustRetriesAt(path string, off int64) {
	drops := make([]int64, fastRetry.Attempts+1)
	for i := range drops {
		drops[i] = off
	}
	h.origin.DropAt(path, drops...)
}

// getAll runs n clients at once, each asking with hdr(i), and returns what
// each got.
func (h *harness) getAll(n int, u string, hdr func(i int) []string) []result {
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = h.get(u, hdr(i)...) })
	}
	wg.Wait()
	return results
}

// sumOf returns the sha256 of bytes [off, off+n) of version v.
func sumOf(v int, off, n int64) string {
	s := sha256.New()
	io.Copy(s, testorigin.NewReader(v, off, n))
	return hex.EncodeToString(s.Sum(nil))
}

// wantBody checks a complete, correct body of version v, bytes [off, off+n).
func wantBody(t *testing.T, what string, r result, status, v int, off, n int64) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s: body error %v after %d bytes", what, r.err, r.n)
	}
	if r.status != status {
		t.Fatalf("%s: status = %d, want %d", what, r.status, status)
	}
	if r.n != n || r.sum != sumOf(v, off, n) {
		t.Fatalf("%s: got %d bytes (sha256 %s), want %d bytes of version %d at %d (sha256 %s)", what, r.n, r.sum[:12], n, v, off, sumOf(v, off, n)[:12])
	}
}

func wantXCache(t *testing.T, what string, r result, want string) {
	t.Helper()
	if got := r.header.Get("X-Cache"); got != want {
		t.Errorf("%s: X-Cache = %q, want %q", what, got, want)
	}
	if !strings.Contains(r.header.Get("Via"), "resumeproxy") {
		t.Errorf("%s: Via = %q, want our hop", what, r.header.Get("Via"))
	}
}

const mib = 1 << 20
