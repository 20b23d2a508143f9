package main

// End-to-end tests of HTTPS interception: the real binary with --mitm and a
// CA made by `resumeproxy ca init`, in front of a TLS origin with a CA of
// its own (trusted by the proxy child through SSL_CERT_FILE), driven by the
// real curl, wget and Python over CONNECT. Intercepted requests must be
// served exactly like plain ones (e2e_test.go): the same sums, the same
// X-Cache, the same upstream bytes.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

// mitmSetup is a TLS origin and a resumeproxy that intercepts CONNECTs to
// it.
type mitmSetup struct {
	o *testorigin.Origin
	p *proxyProc
	// ca is our CA certificate (ca init's ca.pem): what clients trust.
	ca       string
	cacheDir string
	// env is the proxy child's extra environment: SSL_CERT_FILE holding
	// the origin's CA, so that the proxy verifies the origin.
	env []string
	// args are the interception flags, kept for a restart.
	args []string
}

// newMitm starts a TLS origin and a proxy with --mitm, a fresh CA and an
// empty cache, which lets CONNECTs reach the origin's port.
func newMitm(t *testing.T) *mitmSetup {
	t.Helper()
	o := testorigin.NewTLS(t)
	caDir := newCADir(t)
	m := &mitmSetup{
		o:        o,
		ca:       filepath.Join(caDir, "ca.pem"),
		cacheDir: t.TempDir(),
		env:      []string{"SSL_CERT_FILE=" + o.CAFile},
		args:     mitmFlags(caDir, originPort(t, o)),
	}
	m.start(t)
	return m
}

// start starts a proxy on m's cache directory, with m's flags and
// environment.
func (m *mitmSetup) start(t *testing.T) {
	t.Helper()
	m.p = startProxyEnv(t, m.env, m.cacheDir, m.args...)
}

// set serves a strongly validated resource, fresh for the whole test, at
// path and returns its https URL.
func (m *mitmSetup) set(path string, size int64) string {
	m.o.Set(path, testorigin.Resource{Size: size, Validators: testorigin.StrongETag, CacheControl: cacheFor})
	return m.o.URL + path
}

// curl runs curl through the proxy, trusting our CA only.
func (m *mitmSetup) curl(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	return curl(t, m.p, timeout, append([]string{"--cacert", m.ca}, args...)...)
}

// curlContext is curl until ctx is done.
func (m *mitmSetup) curlContext(ctx context.Context, t *testing.T, args ...string) result {
	t.Helper()
	return curlContext(ctx, t, m.p, append([]string{"--cacert", m.ca}, args...)...)
}

// mitmFlags are the flags that turn interception on with the CA in caDir
// and let CONNECTs reach port.
func mitmFlags(caDir, port string) []string {
	return []string{"--mitm", "--ca-cert", filepath.Join(caDir, "ca.pem"), "--ca-key", filepath.Join(caDir, "ca-key.pem"),
		"--connect-ports", port}
}

// originPort returns the port of o's address.
func originPort(t *testing.T, o *testorigin.Origin) string {
	t.Helper()
	_, port, err := net.SplitHostPort(o.Addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// newCADir runs `resumeproxy ca init` in a new directory and returns it.
func newCADir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	if out, errOut, code := runBinary(t, nil, "ca", "init", "--dir", dir); code != 0 {
		t.Fatalf("resumeproxy ca init --dir %s: exit %d\nstdout:\n%s\nstderr:\n%s", dir, code, out, errOut)
	}
	return dir
}

// runBinary runs resumeproxy with args to its end (within clientTimeout),
// env appended to a clean environment, and returns its output and exit
// status (-1 when killed).
func runBinary(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, proxyBinary(t), args...)
	cmd.Env = cleanEnv(env...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("resumeproxy %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

// sizeOf returns the size of the file at path, 0 if there is none.
func sizeOf(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// etagOf is the ETag the origin sends for version v of a size-byte
// resource.
func etagOf(v int, size int64) string { return fmt.Sprintf(`"v%d-%d"`, v, size) }

// TestE2EMitmCurlAbortThenFull is the bar over HTTPS: curl is
// killed while the origin streams a 64 MiB file (at 40% of it sent), then a
// full download must be whole and the origin must have sent at most 4 MiB
// more than the size in total: what the abort left in flight is kept.
func TestE2EMitmCurlAbortThenFull(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	const path, size = "/mitm/abort-full.bin", 64 << 20
	m := newMitm(t)
	u := m.set(path, size)
	dir := t.TempDir()

	// Killed (SIGKILL, as a user's Ctrl-C) while the origin streams, so the
	// abort leaves bytes in flight.
	const abortAt = size * 2 / 5
	m.curlKilledWhen(t, func() bool { return m.o.PathBodyBytes(path) >= abortAt },
		fmt.Sprintf("the origin has sent %d bytes", int64(abortAt)), u, "-o", filepath.Join(dir, "aborted"))
	t.Logf("curl killed with the origin at %d bytes", m.o.PathBodyBytes(path))

	out, hdr := filepath.Join(dir, "full"), filepath.Join(dir, "full.h")
	if r := m.curl(t, clientTimeout, u, "-o", out, "-D", hdr); r.code != 0 {
		t.Fatalf("full download: %v", r)
	}
	if got, want := fileSum(t, out), testorigin.Sum(0, size); got != want {
		t.Errorf("full download (%d bytes): sha256 = %s, want %s", fileSize(t, out), got, want)
	}
	if status, h, dump := readHeaderDump(t, hdr); status != http.StatusOK || h.Get("X-Cache") != "PARTIAL" || h.Get("Via") == "" {
		t.Errorf("full download: status %d, X-Cache %q, Via %q; want 200, PARTIAL, a Via\n%s", status, h.Get("X-Cache"), h.Get("Via"), dump)
	}
	got, limit := m.o.PathBodyBytes(path), int64(size+4<<20)
	t.Logf("origin sent %d body bytes in total for a %d-byte resource (+%d)", got, size, got-size)
	if got > limit {
		t.Errorf("origin sent %d body bytes in total for a %d-byte resource, want at most %d", got, size, limit)
	}
}

// curlKilledWhen runs curl with args in the background and kills it
// (SIGKILL) as soon as cond holds; what describes cond for messages. It
// fails the test if curl ends first or cond does not hold within
// clientTimeout.
func (m *mitmSetup) curlKilledWhen(t *testing.T, cond func() bool, what string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan result, 1)
	go func() { done <- m.curlContext(ctx, t, args...) }()
	if r, ok := waitUntil(cond, done); !ok {
		t.Fatalf("curl ended, or %v passed, before %s: %v", clientTimeout, what, r)
	}
	cancel()
	if r := <-done; r.code != -1 {
		t.Errorf("curl killed once %s: %v; want it killed (-1), not ended", what, r)
	}
}

// waitUntil polls cond until it holds. It returns false, with the client's
// result, if the client ended first or clientTimeout passed (then the
// result is zero).
func waitUntil(cond func() bool, client <-chan result) (result, bool) {
	deadline := time.Now().Add(clientTimeout)
	for !cond() {
		select {
		case r := <-client:
			return r, false
		default:
		}
		if time.Now().After(deadline) {
			return result{}, false
		}
		time.Sleep(time.Millisecond)
	}
	return result{}, true
}

// TestE2EMitmCurlResume kills a slow curl partway, then
// resumes it with -C -: the proxy answers the Range with a 206 from what it
// kept, and the file is whole.
func TestE2EMitmCurlResume(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	const path, size = "/mitm/resume.bin", 16 << 20
	m := newMitm(t)
	u := m.set(path, size)
	out, hdr := filepath.Join(t.TempDir(), "file"), filepath.Join(t.TempDir(), "h")

	m.curlKilledWhen(t, func() bool { return sizeOf(out) >= 1<<20 },
		"its file holds 1 MiB", "--limit-rate", "4M", u, "-o", out)
	partial := fileSize(t, out)
	if partial <= 0 || partial >= size {
		t.Fatalf("after the abort the file has %d bytes, want 0 < n < %d", partial, size)
	}

	if r := m.curl(t, clientTimeout, "-C", "-", u, "-o", out, "-D", hdr); r.code != 0 {
		t.Fatalf("resumed download: %v", r)
	}
	checkCurlResumed(t, out, hdr, partial, size)
	if got, limit := m.o.PathBodyBytes(path), int64(size+4<<20); got > limit {
		t.Errorf("origin sent %d body bytes for a %d-byte resource, want at most %d", got, size, limit)
	}
}

// TestE2EMitmCurlUpstreamDrops has the origin drop the TLS connection five
// times in one download while curl stays connected: the proxy resumes
// upstream each time (Range from where it stopped, with a precondition on
// the version) and curl sees one whole response.
func TestE2EMitmCurlUpstreamDrops(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	const path, size = "/mitm/drops.bin", 8 << 20
	m := newMitm(t)
	u := m.set(path, size)
	drops := []int64{1 << 20, 2<<20 + 12345, 3 << 20, 5<<20 + 1, 7 << 20}
	m.o.DropAt(path, drops...)
	out, hdr := filepath.Join(t.TempDir(), "file"), filepath.Join(t.TempDir(), "h")

	if r := m.curl(t, clientTimeout, u, "-o", out, "-D", hdr); r.code != 0 {
		t.Fatalf("download: %v", r)
	}
	if got, want := fileSum(t, out), testorigin.Sum(0, size); got != want {
		t.Errorf("file (%d bytes): sha256 = %s, want %s", fileSize(t, out), got, want)
	}
	if status, h, dump := readHeaderDump(t, hdr); status != http.StatusOK || h.Get("X-Cache") != "MISS" || h.Get("Content-Length") != fmt.Sprint(size) {
		t.Errorf("status %d, X-Cache %q, Content-Length %q; want 200, MISS, %d\n%s", status, h.Get("X-Cache"), h.Get("Content-Length"), size, dump)
	}
	checkResumes(t, m.o.Requests(path), drops, etagOf(0, size))
	if got := m.o.PathBodyBytes(path); got != size {
		t.Errorf("origin sent %d body bytes, want exactly %d (no byte fetched twice)", got, size)
	}
}

// checkResumes checks the origin's requests after drops at the given
// offsets: one first request, then one per drop asking for the rest from
// where the upstream stopped, with If-Range or If-Match set to etag.
func checkResumes(t *testing.T, reqs []testorigin.Request, drops []int64, etag string) {
	t.Helper()
	if len(reqs) != 1+len(drops) {
		t.Errorf("origin got %d requests, want %d (one, then one per drop)", len(reqs), 1+len(drops))
	}
	for i, off := range drops {
		if i+1 >= len(reqs) {
			break
		}
		h := reqs[i+1].Header
		if got, want := h.Get("Range"), fmt.Sprintf("bytes=%d-", off); !strings.HasPrefix(got, want) {
			t.Errorf("request %d after the drop at %d: Range %q, want %q...", i+2, off, got, want)
		}
		if h.Get("If-Range") != etag && h.Get("If-Match") != etag {
			t.Errorf("request %d: If-Range %q, If-Match %q; want one of them to be %s", i+2, h.Get("If-Range"), h.Get("If-Match"), etag)
		}
	}
}

// TestE2EMitmVersionChange abandons a download of version 0 whose upstream
// hangs, then the file changes on the origin: the next download must be
// version 1 whole, never version 0's kept bytes followed by version 1's
// (DESIGN invariants 1 and 2). The proxy asks for the rest with If-Range,
// and the origin's 200 replaces the entry.
func TestE2EMitmVersionChange(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	const path, size, stall = "/mitm/version.bin", 16 << 20, 6 << 20
	m := newMitm(t)
	u := m.set(path, size)
	m.o.StallAt(path, stall)
	out, hdr := filepath.Join(t.TempDir(), "file"), filepath.Join(t.TempDir(), "h")

	// Killed once it holds what came before the stall (but for what curl
	// may keep in a stdio buffer): so the proxy has all of it.
	m.curlKilledWhen(t, func() bool { return m.o.PathBodyBytes(path) >= stall && sizeOf(out) >= stall-64<<10 },
		"curl has the bytes before the stall", u, "-o", out)
	if n := fileSize(t, out); fileSum(t, out) != prefixSum(0, n) {
		t.Fatalf("the %d bytes curl got before the upstream hung are not a prefix of version 0", n)
	}

	m.o.SetVersion(path, 1)
	m.o.ResetCounts()
	if r := m.curl(t, clientTimeout, u, "-o", out, "-D", hdr); r.code != 0 {
		t.Fatalf("download after the change: %v", r)
	}
	if got, want := fileSum(t, out), testorigin.Sum(1, size); got != want {
		t.Errorf("download after the change (%d bytes): sha256 %s, want version 1's %s (v0's is %s)",
			fileSize(t, out), got, want, testorigin.Sum(0, size))
	}
	if status, h, dump := readHeaderDump(t, hdr); status != http.StatusOK || h.Get("ETag") != etagOf(1, size) || h.Get("X-Cache") != "MISS" {
		t.Errorf("download after the change: status %d, ETag %q, X-Cache %q; want 200, %s, MISS\n%s",
			status, h.Get("ETag"), h.Get("X-Cache"), etagOf(1, size), dump)
	}
	reqs := m.o.Requests(path)
	if len(reqs) == 0 {
		t.Fatalf("origin got no request after the change")
	}
	if h := reqs[0].Header; !strings.HasPrefix(h.Get("Range"), fmt.Sprintf("bytes=%d-", stall)) || h.Get("If-Range") != etagOf(0, size) {
		t.Errorf("first request after the change: Range %q, If-Range %q; want bytes=%d-..., %s", h.Get("Range"), h.Get("If-Range"), stall, etagOf(0, size))
	}
	if got := m.o.PathBodyBytes(path); got != size {
		t.Errorf("origin sent %d body bytes after the change, want %d (version 1 once)", got, size)
	}
}

// TestE2EMitmConcurrentCold starts 8 curl clients of one uncached file at
// once: all get it whole and the origin sends it about once.
func TestE2EMitmConcurrentCold(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	const path, size, clients = "/mitm/cold.bin", 16 << 20, 8
	m := newMitm(t)
	u := m.set(path, size)
	dir := t.TempDir()
	want := testorigin.Sum(0, size)

	var wg sync.WaitGroup
	results := make([]result, clients)
	for i := range clients {
		wg.Go(func() {
			results[i] = m.curl(t, clientTimeout, u, "-o", filepath.Join(dir, fmt.Sprint(i)), "-D", filepath.Join(dir, fmt.Sprint(i, ".h")))
		})
	}
	wg.Wait()
	var xcs []string
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("client %d: %v", i, r)
			continue
		}
		if got := fileSum(t, filepath.Join(dir, fmt.Sprint(i))); got != want {
			t.Errorf("client %d: sha256 %s, want %s", i, got, want)
		}
		status, h, dump := readHeaderDump(t, filepath.Join(dir, fmt.Sprint(i, ".h")))
		if status != http.StatusOK || h.Get("X-Cache") == "" {
			t.Errorf("client %d: status %d, X-Cache %q; want 200 from the proxy\n%s", i, status, h.Get("X-Cache"), dump)
		}
		xcs = append(xcs, h.Get("X-Cache"))
	}
	got := m.o.PathBodyBytes(path)
	t.Logf("X-Cache %v; origin sent %d body bytes, %d requests", xcs, got, len(m.o.Requests(path)))
	if limit := int64(size + 1<<20); got > limit {
		t.Errorf("origin sent %d body bytes for %d concurrent clients of a %d-byte file, want at most %d", got, clients, size, limit)
	}
}

// TestE2EMitmKillAndRestart kills the proxy with SIGKILL while it fills an
// intercepted download, checks that every byte the index claims is right
// (DESIGN invariant 5; cache keys carry the scheme), then a new proxy on
// the same cache directory completes the file, fetching only what was not
// claimed.
func TestE2EMitmKillAndRestart(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	const path, size = "/mitm/kill.bin", 32 << 20
	m := newMitm(t)
	u := m.set(path, size)
	out := filepath.Join(t.TempDir(), "file")

	done := make(chan result, 1)
	go func() { done <- m.curl(t, clientTimeout, u, "-o", out) }()
	if r, ok := waitUntil(func() bool { return m.o.PathBodyBytes(path) >= size/2 }, done); !ok {
		t.Fatalf("origin sent %d of %d bytes when curl ended: %v; want curl still running at %d", m.o.PathBodyBytes(path), size, r, size/2)
	}
	if err := m.p.kill9(); err != nil {
		t.Fatal(err)
	}
	// The cleanup's exit status check, which catches a race report, does
	// not run for a killed child.
	if log := m.p.log(); strings.Contains(log, "WARNING: DATA RACE") {
		t.Errorf("the race detector reported in the killed proxy:\n%s", log)
	}
	select {
	case r := <-done:
		if r.code == 0 {
			t.Errorf("curl through a proxy killed mid-body: %v; want a failure", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("curl still running 10s after the proxy was killed")
	}
	if n := fileSize(t, out); fileSum(t, out) != prefixSum(0, n) {
		t.Errorf("the %d bytes curl got before the kill are not a prefix of the file", n)
	}
	claimed, _, err := checkClaims(m.cacheDir, u, size, etagOf(0, size))
	if err != nil {
		t.Fatalf("after SIGKILL: %v\nresumeproxy stderr:\n%s", err, m.p.log())
	}
	if claimed.Covered() == 0 {
		t.Fatalf("after SIGKILL at %d sent, the index claims nothing for %s, want a part of it\nresumeproxy stderr:\n%s", size/2, u, m.p.log())
	}
	beforeRestart := m.o.PathBodyBytes(path)
	t.Logf("killed with the origin at %d bytes; the index claims %v", beforeRestart, claimed)

	m.start(t)
	hdr := filepath.Join(t.TempDir(), "h")
	if r := m.curl(t, clientTimeout, u, "-o", out, "-D", hdr); r.code != 0 {
		t.Fatalf("download after restart: %v", r)
	}
	if got, want := fileSum(t, out), testorigin.Sum(0, size); got != want {
		t.Errorf("file after restart (%d bytes): sha256 %s, want %s", fileSize(t, out), got, want)
	}
	if status, h, dump := readHeaderDump(t, hdr); status != http.StatusOK || h.Get("X-Cache") != "PARTIAL" {
		t.Errorf("after restart: status %d, X-Cache %q; want 200, PARTIAL\n%s", status, h.Get("X-Cache"), dump)
	}
	total := m.o.PathBodyBytes(path)
	if sent, want := total-beforeRestart, size-claimed.Covered(); sent != want {
		t.Errorf("after restart the origin sent %d body bytes, want %d (only what was not claimed)", sent, want)
	}
	if limit := int64(size + 8<<20); total > limit {
		t.Errorf("origin sent %d body bytes in total, want at most %d", total, limit)
	}
}

// TestE2EMitmWget downloads over HTTPS with wget through the proxy twice:
// a miss, then a hit that takes nothing from the origin.
func TestE2EMitmWget(t *testing.T) {
	t.Parallel()
	need(t, "wget")
	const path, size = "/mitm/wget.bin", 8 << 20
	m := newMitm(t)
	u := m.set(path, size)
	out := filepath.Join(t.TempDir(), "file")
	checkMissThenHit(t, m.o, path, size, out, func() (int, http.Header, result) {
		r := wget(t, m.p, clientTimeout, "-e", "https_proxy="+m.p.URL(), "--ca-certificate="+m.ca, "-O", out, u)
		status, h := lastResponse(wgetHeaders(r.stderr))
		return status, h, r
	})
}

// pythonGet is a urllib download through a proxy that trusts one CA file:
// argv url, proxy, CA file, output file. It writes the response's status
// and X-Cache to stderr as "STATUS <code> <x-cache>".
const pythonGet = `
import ssl, sys, urllib.request
url, proxy, cafile, out = sys.argv[1:]
ctx = ssl.create_default_context(cafile=cafile)
opener = urllib.request.build_opener(
    urllib.request.ProxyHandler({"https": proxy}),
    urllib.request.HTTPSHandler(context=ctx))
with opener.open(url, timeout=30) as r, open(out, "wb") as f:
    while True:
        b = r.read(1 << 20)
        if not b:
            break
        f.write(b)
    print("STATUS", r.status, r.headers.get("X-Cache", ""), file=sys.stderr)
`

// TestE2EMitmPython is TestE2EMitmWget with Python's urllib.
func TestE2EMitmPython(t *testing.T) {
	t.Parallel()
	python := need(t, "python3")
	const path, size = "/mitm/python.bin", 8 << 20
	m := newMitm(t)
	u := m.set(path, size)
	out := filepath.Join(t.TempDir(), "file")
	checkMissThenHit(t, m.o, path, size, out, func() (int, http.Header, result) {
		r := runClient(t, clientTimeout, clientEnv(t), python, "-c", pythonGet, u, m.p.URL(), m.ca, out)
		h := http.Header{}
		var status int
		var xc string
		for line := range strings.Lines(r.stderr) {
			if _, err := fmt.Sscanf(line, "STATUS %d %s", &status, &xc); err == nil {
				h.Set("X-Cache", xc)
			}
		}
		return status, h, r
	})
}

// checkMissThenHit runs a client's download twice into out: the first must
// be a whole MISS, the second a whole HIT with no body byte from the
// origin.
func checkMissThenHit(t *testing.T, o *testorigin.Origin, path string, size int64, out string, get func() (int, http.Header, result)) {
	t.Helper()
	want := testorigin.Sum(0, size)
	for i, wantXC := range []string{"MISS", "HIT"} {
		before := o.PathBodyBytes(path)
		status, h, r := get()
		if r.code != 0 {
			t.Fatalf("download %d: %v", i+1, r)
		}
		if got := fileSum(t, out); got != want {
			t.Errorf("download %d: sha256 = %s, want %s", i+1, got, want)
		}
		if status != http.StatusOK || h.Get("X-Cache") != wantXC {
			t.Errorf("download %d: status %d, X-Cache %q; want 200, %s\n%s", i+1, status, h.Get("X-Cache"), wantXC, r.stderr)
		}
		grew := o.PathBodyBytes(path) - before
		if wantXC == "MISS" && grew != size {
			t.Errorf("download %d (a miss) took %d body bytes from the origin, want %d", i+1, grew, size)
		}
		if wantXC == "HIT" && grew != 0 {
			t.Errorf("download %d (a hit) took %d body bytes from the origin, want 0", i+1, grew)
		}
	}
}

// TestE2EMitmStartErrors: a CA that cannot intercept stops the start with
// exit status 2 and a message naming the reason, before the cache directory
// is touched; and the ca subcommands keep an existing CA, protect its key
// and print the certificate the proxy serves at /ca.pem.
func TestE2EMitmStartErrors(t *testing.T) {
	t.Parallel()
	a, b := newCADir(t), newCADir(t)
	notCA := writeSelfSigned(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "a server, not a CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:              []string{"localhost"},
	})
	expired := writeSelfSigned(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "an expired CA"},
		NotBefore:             time.Now().Add(-48 * time.Hour),
		NotAfter:              time.Now().Add(-24 * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	})
	empty := t.TempDir()
	tests := []struct {
		name string
		env  []string
		args []string
		want []string // substrings of stderr
	}{
		{"no CA", []string{"HOME=" + empty, "XDG_CONFIG_HOME=" + empty}, []string{"--mitm"},
			[]string{"--mitm", "resumeproxy ca init"}},
		{"key of another CA", nil, []string{"--mitm", "--ca-cert", filepath.Join(a, "ca.pem"), "--ca-key", filepath.Join(b, "ca-key.pem")},
			[]string{filepath.Join(b, "ca-key.pem"), "does not match", filepath.Join(a, "ca.pem")}},
		{"not a CA", nil, []string{"--mitm", "--ca-cert", notCA[0], "--ca-key", notCA[1]},
			[]string{notCA[0], "not a CA"}},
		{"expired CA", nil, []string{"--mitm", "--ca-cert", expired[0], "--ca-key", expired[1]},
			[]string{expired[0], "expired"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cacheDir := filepath.Join(t.TempDir(), "cache")
			_, errOut, code := runBinary(t, tt.env, append([]string{"--listen", "127.0.0.1:0", "--cache-dir", cacheDir}, tt.args...)...)
			if code != 2 {
				t.Errorf("resumeproxy %s: exit %d, want 2\nstderr:\n%s", strings.Join(tt.args, " "), code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("resumeproxy %s: stderr %q, want it to mention %q", strings.Join(tt.args, " "), errOut, w)
				}
			}
			if _, err := os.Stat(cacheDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("resumeproxy %s created the cache directory (stat: %v), want it untouched", strings.Join(tt.args, " "), err)
			}
		})
	}
	t.Run("ca init and cert", func(t *testing.T) {
		t.Parallel()
		testCACommands(t)
	})
}

// testCACommands checks `ca init` twice, `ca cert` and GET /ca.pem.
func testCACommands(t *testing.T) {
	dir := newCADir(t)
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	cert, key := readFile(t, certPath), readFile(t, keyPath)
	if fi, err := os.Stat(keyPath); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("ca init: key file %s has mode %v, want 0600", keyPath, fi.Mode().Perm())
	}
	if block, _ := pem.Decode([]byte(cert)); block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("ca init: %s is not a PEM certificate:\n%s", certPath, cert)
	}

	out, errOut, code := runBinary(t, nil, "ca", "init", "--dir", dir)
	if code != 2 || !strings.Contains(errOut, "already exists") {
		t.Errorf("second ca init --dir %s: exit %d, stderr %q; want 2 and a message that the CA already exists\nstdout:\n%s", dir, code, errOut, out)
	}
	if readFile(t, certPath) != cert || readFile(t, keyPath) != key {
		t.Errorf("second ca init --dir %s changed the CA files, want them kept", dir)
	}

	out, errOut, code = runBinary(t, nil, "ca", "cert", "--dir", dir)
	if code != 0 || out != cert {
		t.Errorf("ca cert --dir %s: exit %d, stdout %q, stderr %q; want 0 and the contents of %s:\n%s", dir, code, out, errOut, certPath, cert)
	}

	p := startProxy(t, t.TempDir(), mitmFlags(dir, "443")...)
	c := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: clientTimeout}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://" + p.addr + "/ca.pem")
	if err != nil {
		t.Fatalf("GET /ca.pem from the proxy: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != cert {
		t.Errorf("GET /ca.pem: status %d, err %v, body %q; want 200 and the contents of %s:\n%s", resp.StatusCode, err, body, certPath, cert)
	}
}

// readFile returns the contents of path.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeSelfSigned signs tmpl with a new P-256 key and writes the
// certificate and the key (PKCS#8) as PEM files; it returns their paths.
func writeSelfSigned(t *testing.T, tmpl *x509.Certificate) [2]string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths := [2]string{filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")}
	for i, b := range []*pem.Block{{Type: "CERTIFICATE", Bytes: der}, {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(paths[i], pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

// TestE2EMitmConnectPort: a CONNECT to a port outside --connect-ports gets
// 403 and never reaches the origin; a host in mitm.bypass is tunnelled
// untouched (the client sees the origin's own certificate and no X-Cache)
// while other hosts on the same proxy are intercepted.
func TestE2EMitmConnectPort(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	const path, size = "/mitm/port.bin", 1 << 20

	t.Run("port not allowed", func(t *testing.T) {
		t.Parallel()
		o := testorigin.NewTLS(t)
		o.Set(path, testorigin.Resource{Size: size, CacheControl: cacheFor})
		caDir := newCADir(t)
		p := startProxyEnv(t, []string{"SSL_CERT_FILE=" + o.CAFile}, t.TempDir(), mitmFlags(caDir, "443")...)
		out, hdr := filepath.Join(t.TempDir(), "file"), filepath.Join(t.TempDir(), "h")
		r := curl(t, p, clientTimeout, "--cacert", filepath.Join(caDir, "ca.pem"), o.URL+path, "-o", out, "-D", hdr)
		if r.code != 56 || !strings.Contains(r.stderr, "403") { // CURLE_RECV_ERROR: CONNECT tunnel failed
			t.Errorf("CONNECT to port %s with --connect-ports 443: %v; want exit 56 and a 403", originPort(t, o), r)
		}
		if status, _, dump := readHeaderDump(t, hdr); status != http.StatusForbidden {
			t.Errorf("CONNECT to port %s with --connect-ports 443: status %d, want 403\n%s", originPort(t, o), status, dump)
		}
		if n := len(o.Requests(path)); n != 0 || o.BodyBytes() != 0 {
			t.Errorf("origin got %d requests and sent %d body bytes, want none", n, o.BodyBytes())
		}
	})

	t.Run("bypass", func(t *testing.T) {
		t.Parallel()
		o := testorigin.NewTLS(t)
		o.Set(path, testorigin.Resource{Size: size, CacheControl: cacheFor})
		caDir := newCADir(t)
		ourCA := filepath.Join(caDir, "ca.pem")
		cfg := writeFile(t, "resumeproxy.yaml", fmt.Sprintf("connect_ports: [%s]\nmitm: {enabled: true, ca_cert: %q, ca_key: %q, bypass: [\"127.0.0.1\"]}\n",
			originPort(t, o), ourCA, filepath.Join(caDir, "ca-key.pem")))
		p := startProxyEnv(t, []string{"SSL_CERT_FILE=" + o.CAFile}, t.TempDir(), "--config", cfg)
		dir := t.TempDir()
		want := testorigin.Sum(0, size)

		// 127.0.0.1 is bypassed: only the origin's CA verifies what curl sees.
		out, hdr := filepath.Join(dir, "bypassed"), filepath.Join(dir, "bypassed.h")
		if r := curl(t, p, clientTimeout, "--cacert", o.CAFile, o.URL+path, "-o", out, "-D", hdr); r.code != 0 {
			t.Fatalf("bypassed host with the origin's CA: %v", r)
		}
		if got := fileSum(t, out); got != want {
			t.Errorf("bypassed host: sha256 %s, want %s", got, want)
		}
		if status, h, dump := readHeaderDump(t, hdr); status != http.StatusOK || h.Get("X-Cache") != "" || h.Get("Via") != "" {
			t.Errorf("bypassed host: status %d, X-Cache %q, Via %q; want 200 straight from the origin (no X-Cache, no Via)\n%s", status, h.Get("X-Cache"), h.Get("Via"), dump)
		}
		if r := curl(t, p, clientTimeout, "--cacert", ourCA, o.URL+path, "-o", out); r.code != 60 { // CURLE_PEER_FAILED_VERIFICATION
			t.Errorf("bypassed host with only our CA: %v; want exit 60 (the origin's certificate is not ours)", r)
		}
		if got := o.PathBodyBytes(path); got != size {
			t.Errorf("origin sent %d body bytes through the tunnel, want %d", got, size)
		}

		// localhost is not bypassed: the same origin, intercepted.
		localURL := "https://" + net.JoinHostPort("localhost", originPort(t, o)) + path
		if r := curl(t, p, clientTimeout, "--cacert", ourCA, localURL, "-o", out, "-D", hdr); r.code != 0 {
			t.Fatalf("intercepted host localhost with our CA: %v", r)
		}
		if got := fileSum(t, out); got != want {
			t.Errorf("intercepted host: sha256 %s, want %s", got, want)
		}
		if status, h, dump := readHeaderDump(t, hdr); status != http.StatusOK || h.Get("X-Cache") != "MISS" {
			t.Errorf("intercepted host: status %d, X-Cache %q; want 200, MISS\n%s", status, h.Get("X-Cache"), dump)
		}
	})
}
