package main

// End-to-end tests: the real resumeproxy binary, started as a child process,
// in front of a fault-injecting origin, driven by the real curl and wget.
// Everything binds to 127.0.0.1 and every child runs under a deadline.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

const (
	// startTimeout bounds how long a fresh proxy may take to accept connections.
	startTimeout = 15 * time.Second
	// stopTimeout bounds how long the proxy may take to exit after SIGTERM.
	stopTimeout = 15 * time.Second
	// clientTimeout bounds one curl or wget run that is expected to finish.
	clientTimeout = 30 * time.Second
	// cacheFor is the Cache-Control of every test resource: fresh for the
	// whole test, so a second request is a hit without revalidation.
	cacheFor = "max-age=3600"
)

// built is the resumeproxy binary shared by all tests, built on first use.
var built struct {
	once sync.Once
	dir  string // removed by TestMain
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// proxyBinary returns the path of the resumeproxy binary, building it once
// per test process. It is built with -race when the tests are, so that the
// end-to-end tests also look for data races in the proxy (a race report
// makes the child exit 66, which the SIGTERM check catches).
func proxyBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "resumeproxy-e2e-")
		if built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "resumeproxy")
		args := []string{"build", "-o", built.path}
		if raceEnabled() {
			args = append(args, "-race")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, goTool(), append(args, ".")...).CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if built.err != nil {
		t.Fatalf("building resumeproxy: %v", built.err)
	}
	return built.path
}

// goTool returns the go command of the toolchain running the tests.
func goTool() string {
	if root := runtime.GOROOT(); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// need skips the test when the client program name is missing, except in
// CI, which installs it: there a missing client is a failure.
func need(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found but CI is set: install it (apt-get install -y curl wget): %v", name, err)
	}
	t.Skipf("%s not found; install it to run this test: apt-get install -y curl wget", name)
	return ""
}

// proxyProc is one resumeproxy child process.
type proxyProc struct {
	cmd    *exec.Cmd
	addr   string // host:port it was told to listen on
	stderr string // path of the file that receives its stderr
	done   chan struct{}
	// waitErr is cmd.Wait's result; read it only after done is closed.
	waitErr error
	stop    sync.Once
}

// launch starts the binary with args, stderr to a file. It does not wait
// for anything; a cleanup kills the child if it is still running at the
// very end, so no test leaves a process behind.
func launch(t *testing.T, addr string, args ...string) *proxyProc {
	t.Helper()
	return launchEnv(t, nil, addr, args...)
}

// launchEnv is launch with env appended to the child's clean environment
// (SSL_CERT_FILE, say, so that it trusts a TLS origin).
func launchEnv(t *testing.T, env []string, addr string, args ...string) *proxyProc {
	t.Helper()
	errFile, err := os.CreateTemp(t.TempDir(), "resumeproxy-stderr-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	cmd := exec.Command(proxyBinary(t), args...)
	cmd.Env = cleanEnv(env...)
	cmd.Stdout = errFile
	cmd.Stderr = errFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start resumeproxy %v: %v", args, err)
	}
	p := &proxyProc{cmd: cmd, addr: addr, stderr: errFile.Name(), done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// startProxy starts resumeproxy on a free 127.0.0.1 port with the given
// cache directory and waits until it accepts connections. At cleanup it
// sends SIGTERM and requires exit status 0 within stopTimeout; if the test
// failed (or RESUMEPROXY_TEST_DEBUG is set), the child's stderr is logged.
func startProxy(t *testing.T, cacheDir string, extra ...string) *proxyProc {
	t.Helper()
	return startProxyEnv(t, nil, cacheDir, extra...)
}

// startProxyEnv is startProxy with env appended to the child's clean
// environment.
func startProxyEnv(t *testing.T, env []string, cacheDir string, extra ...string) *proxyProc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		addr := freeAddr(t)
		p := launchEnv(t, env, addr, append([]string{"--listen", addr, "--cache-dir", cacheDir}, extra...)...)
		err := p.waitServing(startTimeout)
		if err == nil {
			t.Cleanup(func() {
				if t.Failed() || os.Getenv("RESUMEPROXY_TEST_DEBUG") != "" {
					t.Logf("resumeproxy stderr (%s):\n%s", p.addr, p.log())
				}
			})
			t.Cleanup(func() { p.signalAndWait(t, syscall.SIGTERM) })
			return p
		}
		// The port may have been taken between freeAddr and the child's listen.
		if attempt < 3 && strings.Contains(p.log(), "address already in use") {
			continue
		}
		t.Fatalf("resumeproxy did not start: %v\nstderr:\n%s", err, p.log())
	}
}

// freeAddr returns a 127.0.0.1 address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitServing polls until the child accepts a TCP connection on its address,
// it exits, or the timeout passes.
func (p *proxyProc) waitServing(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("exited before serving: %v", p.waitErr)
		default:
		}
		if c, err := net.DialTimeout("tcp", p.addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not accepting on %s after %v", p.addr, timeout)
}

// URL returns the proxy URL to give clients.
func (p *proxyProc) URL() string { return "http://" + p.addr }

// log returns what the child has written to stderr so far.
func (p *proxyProc) log() string {
	b, err := os.ReadFile(p.stderr)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", p.stderr, err)
	}
	return string(b)
}

// signalAndWait sends sig once and requires exit status 0 within
// stopTimeout. Later calls do nothing.
func (p *proxyProc) signalAndWait(t *testing.T, sig os.Signal) {
	t.Helper()
	p.stop.Do(func() {
		select {
		case <-p.done:
			t.Errorf("resumeproxy exited before %v: %v", sig, p.waitErr)
			return
		default:
		}
		if err := p.cmd.Process.Signal(sig); err != nil {
			t.Errorf("signal resumeproxy: %v", err)
		}
		start := time.Now()
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			p.cmd.Process.Kill()
			<-p.done
			t.Errorf("resumeproxy still running %v after %v; killed", stopTimeout, sig)
			return
		}
		if p.waitErr != nil {
			t.Errorf("resumeproxy after %v: %v (after %v), want exit status 0", sig, p.waitErr, time.Since(start).Round(time.Millisecond))
		}
	})
}

// proxyEnvKeys are the environment variables through which curl, wget and
// Go pick a proxy; children never inherit them.
var proxyEnvKeys = map[string]bool{
	"http_proxy": true, "https_proxy": true, "all_proxy": true, "no_proxy": true, "ftp_proxy": true,
}

// cleanEnv returns the environment without proxy settings, curl and wget
// configuration (.curlrc, .wgetrc are under HOME, which callers replace).
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch lk := strings.ToLower(k); {
		case proxyEnvKeys[lk], lk == "curl_home", lk == "wgetrc":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// clientEnv is cleanEnv with HOME set to a fresh directory, so that no
// user configuration reaches the client and wget's HSTS file stays there.
func clientEnv(t *testing.T, extra ...string) []string {
	env := []string{}
	for _, kv := range cleanEnv() {
		if !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(append(env, "HOME="+t.TempDir()), extra...)
}

// result is what one client run did.
type result struct {
	cmdline string
	code    int // exit status; -1 when killed by a signal, -2 when not started
	stderr  string
}

func (r result) String() string {
	return fmt.Sprintf("`%s` exited %d; stderr:\n%s", r.cmdline, r.code, r.stderr)
}

// runClient runs name with args and env under a timeout; when the timeout
// passes the client is killed (code -1). A client that cannot be started
// gets code -2. It may be called from any goroutine.
func runClient(t *testing.T, timeout time.Duration, env []string, name string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return runClientContext(ctx, t, env, name, args...)
}

// runClientContext is runClient until ctx is done instead of a timeout: a
// test cancels ctx to kill the client (SIGKILL) at a moment of its choosing.
func runClientContext(ctx context.Context, t *testing.T, env []string, name string, args ...string) result {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	var stderr strings.Builder
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := result{cmdline: name + " " + strings.Join(args, " "), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		r.code, r.stderr = -2, err.Error()
	}
	return r
}

// curl runs curl through proxy p with a clean environment. -q (first) skips
// any .curlrc.
func curl(t *testing.T, p *proxyProc, timeout time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return curlContext(ctx, t, p, args...)
}

// curlContext is curl until ctx is done instead of a timeout.
func curlContext(ctx context.Context, t *testing.T, p *proxyProc, args ...string) result {
	t.Helper()
	need(t, "curl")
	args = append([]string{"-q", "-sS", "-x", p.URL(), "--max-time", fmt.Sprint(int(clientTimeout / time.Second))}, args...)
	return runClientContext(ctx, t, clientEnv(t), "curl", args...)
}

// wget runs wget through proxy p, told both by environment and by -e so
// that it cannot bypass it, with no configuration file and the server's
// headers on stderr (-S).
func wget(t *testing.T, p *proxyProc, timeout time.Duration, args ...string) result {
	t.Helper()
	need(t, "wget")
	env := clientEnv(t, "http_proxy="+p.URL(), "no_proxy=")
	args = append([]string{"--no-config", "-nv", "-S", "--tries=1", "--timeout=30",
		"-e", "use_proxy=yes", "-e", "http_proxy=" + p.URL()}, args...)
	return runClient(t, timeout, env, "wget", args...)
}

// fileSum returns the hex sha256 of the file at path.
func fileSum(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// lastResponse parses the last response head in a dump: curl -D output, or
// wget -S output (whose header lines are indented by two spaces). It
// returns status 0 when there is none.
func lastResponse(dump string) (status int, h http.Header) {
	h = http.Header{}
	in := false
	sc := bufio.NewScanner(strings.NewReader(dump))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if proto, rest, ok := strings.Cut(line, " "); ok && strings.HasPrefix(proto, "HTTP/") {
			status, h, in = 0, http.Header{}, true
			fmt.Sscanf(rest, "%d", &status)
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !in || !ok || k == "" || strings.ContainsAny(k, " \t") {
			in = false
			continue
		}
		h.Add(k, strings.TrimSpace(v))
	}
	return status, h
}

// wgetHeaders keeps the indented lines of wget -S output: the server's.
func wgetHeaders(stderr string) string {
	var b strings.Builder
	for line := range strings.Lines(stderr) {
		if strings.HasPrefix(line, "  ") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// readHeaderDump reads a curl -D file and parses its last response.
func readHeaderDump(t *testing.T, path string) (int, http.Header, string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, h := lastResponse(string(b))
	return s, h, string(b)
}

// e2eSetup is the common start of a test: an origin with one resource at
// path and a proxy with an empty cache.
func e2eSetup(t *testing.T, path string, size int64) (*testorigin.Origin, *proxyProc, string) {
	t.Helper()
	o := testorigin.New(t)
	o.Set(path, testorigin.Resource{Size: size, Validators: testorigin.StrongETag, CacheControl: cacheFor})
	p := startProxy(t, t.TempDir())
	return o, p, o.URL + path
}

// TestE2ECurlDownloadThenHit downloads through the proxy with curl, then
// again: the second download comes from the cache without an upstream byte.
func TestE2ECurlDownloadThenHit(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	const path, size = "/curl/full.bin", 8 << 20
	o, p, u := e2eSetup(t, path, size)
	dir := t.TempDir()
	want := testorigin.Sum(0, size)

	out, hdr := filepath.Join(dir, "first"), filepath.Join(dir, "first.h")
	if r := curl(t, p, clientTimeout, u, "-o", out, "-D", hdr); r.code != 0 {
		t.Fatalf("first download: %v", r)
	}
	if got := fileSum(t, out); got != want {
		t.Errorf("first download: sha256 = %s, want %s", got, want)
	}
	status, h, dump := readHeaderDump(t, hdr)
	if status != http.StatusOK || h.Get("X-Cache") != "MISS" || h.Get("Via") == "" || h.Get("Content-Length") != fmt.Sprint(size) {
		t.Errorf("first download: status %d, X-Cache %q, Via %q, Content-Length %q; want 200, MISS, a Via, %d\n%s",
			status, h.Get("X-Cache"), h.Get("Via"), h.Get("Content-Length"), size, dump)
	}
	originBytes, originReqs := o.PathBodyBytes(path), len(o.Requests(path))

	out, hdr = filepath.Join(dir, "second"), filepath.Join(dir, "second.h")
	if r := curl(t, p, clientTimeout, u, "-o", out, "-D", hdr); r.code != 0 {
		t.Fatalf("second download: %v", r)
	}
	if got := fileSum(t, out); got != want {
		t.Errorf("second download: sha256 = %s, want %s", got, want)
	}
	status, h, dump = readHeaderDump(t, hdr)
	if status != http.StatusOK || h.Get("X-Cache") != "HIT" || h.Get("Via") == "" || h.Get("Content-Length") != fmt.Sprint(size) {
		t.Errorf("second download: status %d, X-Cache %q, Via %q, Content-Length %q; want 200, HIT, a Via, %d\n%s",
			status, h.Get("X-Cache"), h.Get("Via"), h.Get("Content-Length"), size, dump)
	}
	if got := o.PathBodyBytes(path); got != originBytes {
		t.Errorf("origin body bytes after the hit = %d, want %d (unchanged)", got, originBytes)
	}
	if got := len(o.Requests(path)); got != originReqs {
		t.Errorf("origin requests after the hit = %d, want %d (a fresh hit needs no revalidation)", got, originReqs)
	}
}

// TestE2ECurlAbortThenResume stops a slow curl partway (--max-time), then
// resumes it with -C -: the proxy answers the Range with a 206 from what it
// kept, and the file is whole.
func TestE2ECurlAbortThenResume(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	const path, size = "/curl/abort.bin", 32 << 20
	o, p, u := e2eSetup(t, path, size)
	out, hdr := filepath.Join(t.TempDir(), "file"), filepath.Join(t.TempDir(), "h")

	r := curl(t, p, clientTimeout, "--limit-rate", "2M", "--max-time", "1", u, "-o", out)
	if r.code != 28 { // CURLE_OPERATION_TIMEDOUT
		t.Fatalf("aborted download: %v; want exit 28 (timed out)", r)
	}
	partial := fileSize(t, out)
	if partial <= 0 || partial >= size {
		t.Fatalf("after the abort the file has %d bytes, want 0 < n < %d", partial, size)
	}

	r = curl(t, p, clientTimeout, "-C", "-", u, "-o", out, "-D", hdr)
	if r.code != 0 {
		t.Fatalf("resumed download: %v", r)
	}
	checkCurlResumed(t, out, hdr, partial, size)
	if got, limit := o.BodyBytes(), int64(size+4<<20); got > limit {
		t.Errorf("origin sent %d body bytes for a %d-byte resource, want at most %d", got, size, limit)
	}
}

// TestE2EWgetDownloadThenHit is TestE2ECurlDownloadThenHit with wget.
func TestE2EWgetDownloadThenHit(t *testing.T) {
	t.Parallel()
	need(t, "wget")
	const path, size = "/wget/full.bin", 8 << 20
	o, p, u := e2eSetup(t, path, size)
	out := filepath.Join(t.TempDir(), "file")
	want := testorigin.Sum(0, size)

	for i, wantXC := range []string{"MISS", "HIT"} {
		before := o.PathBodyBytes(path)
		r := wget(t, p, clientTimeout, "-O", out, u)
		if r.code != 0 {
			t.Fatalf("download %d: %v", i+1, r)
		}
		if got := fileSum(t, out); got != want {
			t.Errorf("download %d: sha256 = %s, want %s", i+1, got, want)
		}
		status, h := lastResponse(wgetHeaders(r.stderr))
		if status != http.StatusOK || h.Get("X-Cache") != wantXC {
			t.Errorf("download %d: status %d, X-Cache %q; want 200, %s\n%s", i+1, status, h.Get("X-Cache"), wantXC, r.stderr)
		}
		if grew := o.PathBodyBytes(path) - before; wantXC == "HIT" && grew != 0 {
			t.Errorf("download %d (a hit) took %d body bytes from the origin, want 0", i+1, grew)
		}
	}
}

// TestE2EWgetAbortThenResume kills a slow wget partway, then continues the
// same file with wget -c.
func TestE2EWgetAbortThenResume(t *testing.T) {
	t.Parallel()
	need(t, "wget")
	const path, size = "/wget/abort.bin", 32 << 20
	o, p, u := e2eSetup(t, path, size)
	out := filepath.Join(t.TempDir(), "file")

	r := wget(t, p, time.Second, "--limit-rate=2m", "-O", out, u)
	if r.code == 0 {
		t.Fatalf("rate-limited wget finished within 1s: %v", r)
	}
	partial := fileSize(t, out)
	if partial <= 0 || partial >= size {
		t.Fatalf("after the abort the file has %d bytes, want 0 < n < %d\n%v", partial, size, r)
	}

	r = wget(t, p, clientTimeout, "-c", "-O", out, u)
	if r.code != 0 {
		t.Fatalf("resumed download: %v", r)
	}
	if got, want := fileSum(t, out), testorigin.Sum(0, size); got != want {
		t.Errorf("resumed file (%d bytes): sha256 = %s, want %s", fileSize(t, out), got, want)
	}
	status, h := lastResponse(wgetHeaders(r.stderr))
	wantCR := fmt.Sprintf("bytes %d-%d/%d", partial, size-1, size)
	if xc := h.Get("X-Cache"); status != http.StatusPartialContent || (xc != "PARTIAL" && xc != "HIT") || h.Get("Content-Range") != wantCR {
		t.Errorf("resume: status %d, X-Cache %q, Content-Range %q; want 206, PARTIAL or HIT, %q\n%s",
			status, xc, h.Get("Content-Range"), wantCR, r.stderr)
	}
	if got, limit := o.BodyBytes(), int64(size+4<<20); got > limit {
		t.Errorf("origin sent %d body bytes for a %d-byte resource, want at most %d", got, size, limit)
	}
}

// TestE2ECurlUpstreamDrops has the origin drop the connection three times
// while curl stays connected: the proxy resumes upstream each time and curl
// sees one whole response.
func TestE2ECurlUpstreamDrops(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	const path, size = "/curl/drops.bin", 8 << 20
	o, p, u := e2eSetup(t, path, size)
	drops := []int64{1 << 20, 3 << 20, 5 << 20}
	o.DropAt(path, drops...)
	out, hdr := filepath.Join(t.TempDir(), "file"), filepath.Join(t.TempDir(), "h")

	if r := curl(t, p, clientTimeout, u, "-o", out, "-D", hdr); r.code != 0 {
		t.Fatalf("download: %v", r)
	}
	if got, want := fileSum(t, out), testorigin.Sum(0, size); got != want {
		t.Errorf("file (%d bytes): sha256 = %s, want %s", fileSize(t, out), got, want)
	}
	// The length is announced up front although the upstream will drop:
	// that is what lets a client tell a cut body (DESIGN invariant 4).
	if status, h, dump := readHeaderDump(t, hdr); status != http.StatusOK || h.Get("X-Cache") != "MISS" || h.Get("Content-Length") != fmt.Sprint(size) {
		t.Errorf("status %d, X-Cache %q, Content-Length %q; want 200, MISS, %d\n%s", status, h.Get("X-Cache"), h.Get("Content-Length"), size, dump)
	}
	// Each resume asks for the rest from where the upstream stopped, with a
	// precondition on the version (If-Range or If-Match).
	reqs := o.Requests(path)
	if len(reqs) != 1+len(drops) {
		t.Errorf("origin got %d requests, want %d (one, then one per drop)", len(reqs), 1+len(drops))
	}
	etag := `"v0-` + fmt.Sprint(size) + `"`
	for i, off := range drops {
		if i+1 >= len(reqs) {
			break
		}
		h := reqs[i+1].Header
		if got, want := h.Get("Range"), fmt.Sprintf("bytes=%d-", off); got != want && !strings.HasPrefix(got, want) {
			t.Errorf("request %d after drop at %d: Range %q, want %q", i+2, off, got, want)
		}
		if h.Get("If-Range") != etag && h.Get("If-Match") != etag {
			t.Errorf("request %d: If-Range %q, If-Match %q; want one of them to be %s", i+2, h.Get("If-Range"), h.Get("If-Match"), etag)
		}
	}
	if got := o.PathBodyBytes(path); got != size {
		t.Errorf("origin sent %d body bytes, want exactly %d (no byte fetched twice)", got, size)
	}
}

// TestE2EPartialSurvivesRestart abandons a download whose upstream hangs
// at 3 MiB, stops the proxy with SIGTERM, starts a new one on the same cache
// directory and downloads again: the kept bytes are served (PARTIAL) and
// only the rest is fetched.
func TestE2EPartialSurvivesRestart(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	const path, size, stall = "/curl/restart.bin", 16 << 20, 3 << 20
	o := testorigin.New(t)
	o.Set(path, testorigin.Resource{Size: size, Validators: testorigin.StrongETag, CacheControl: cacheFor})
	o.StallAt(path, stall)
	u := o.URL + path
	cacheDir := t.TempDir()
	out := filepath.Join(t.TempDir(), "file")

	p1 := startProxy(t, cacheDir)
	if r := curl(t, p1, clientTimeout, "--max-time", "1", u, "-o", out); r.code != 28 {
		t.Fatalf("download against a hanging upstream: %v; want exit 28 (timed out)", r)
	}
	if got := fileSize(t, out); got != stall {
		t.Errorf("curl got %d bytes before the upstream hung, want %d", got, stall)
	}
	p1.signalAndWait(t, syscall.SIGTERM)
	if t.Failed() {
		return
	}

	o.ResetCounts()
	p2 := startProxy(t, cacheDir)
	hdr := filepath.Join(t.TempDir(), "h")
	if r := curl(t, p2, clientTimeout, u, "-o", out, "-D", hdr); r.code != 0 {
		t.Fatalf("download after restart: %v", r)
	}
	if got, want := fileSum(t, out), testorigin.Sum(0, size); got != want {
		t.Errorf("file after restart (%d bytes): sha256 = %s, want %s", fileSize(t, out), got, want)
	}
	if status, h, dump := readHeaderDump(t, hdr); status != http.StatusOK || h.Get("X-Cache") != "PARTIAL" {
		t.Errorf("after restart: status %d, X-Cache %q; want 200, PARTIAL\n%s", status, h.Get("X-Cache"), dump)
	}
	if got, want := o.PathBodyBytes(path), int64(size-stall); got != want {
		t.Errorf("after restart the origin sent %d body bytes, want %d (only what was missing)", got, want)
	}
}

// TestE2ELockSecondProcess starts a second resumeproxy on a cache directory
// that a running one holds: it must fail fast and say why.
func TestE2ELockSecondProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := startProxy(t, dir)

	addr := freeAddr(t)
	second := launch(t, addr, "--listen", addr, "--cache-dir", dir)
	select {
	case <-second.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("second resumeproxy on %s still running after 5s, want a prompt failure\nstderr:\n%s", dir, second.log())
	}
	var ee *exec.ExitError
	if !errors.As(second.waitErr, &ee) || ee.ExitCode() <= 0 {
		t.Errorf("second resumeproxy: %v, want a non-zero exit status", second.waitErr)
	}
	if msg := second.log(); !strings.Contains(msg, dir) || !strings.Contains(msg, "another resumeproxy") {
		t.Errorf("second resumeproxy stderr = %q, want it to name %s and say another resumeproxy holds it", msg, dir)
	}
	if err := first.waitServing(time.Second); err != nil {
		t.Errorf("first resumeproxy after the second gave up: %v", err)
	}
}

// TestE2ESignalExitsZero stops a proxy that has served and cached a
// response with SIGTERM or SIGINT: it must exit 0 promptly.
func TestE2ESignalExitsZero(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			const path, size = "/signal.bin", 1 << 20
			_, p, u := e2eSetup(t, path, size)
			proxyURL, _ := url.Parse(p.URL())
			c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: clientTimeout}
			defer c.CloseIdleConnections()
			resp, err := c.Get(u)
			if err != nil {
				t.Fatalf("GET through the proxy: %v", err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != size || resp.Header.Get("X-Cache") == "" {
				t.Fatalf("GET through the proxy: %d bytes, %v, X-Cache %q; want %d bytes from the proxy", n, err, resp.Header.Get("X-Cache"), size)
			}
			c.CloseIdleConnections()

			start := time.Now()
			p.signalAndWait(t, sig)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("idle resumeproxy took %v to exit after %v, want under 5s", d, sig)
			}
			if msg := p.log(); !strings.Contains(msg, "shutting down") {
				t.Errorf("resumeproxy stderr does not log the shutdown:\n%s", msg)
			}
		})
	}
}

// prefixSum returns the hex sha256 of the first n bytes of version v.
func prefixSum(v int, n int64) string {
	h := sha256.New()
	io.Copy(h, testorigin.NewReader(v, 0, n))
	return hex.EncodeToString(h.Sum(nil))
}

// TestE2ECurlUpstreamChangedMidBody replaces the file on the origin while
// curl is downloading it. The proxy cannot finish the response with the old
// version and must not splice in the new one: curl has to see a cut body
// (exit 18, "partial file") holding only old bytes (DESIGN invariants 1
// and 4). The next download gets the new version whole.
func TestE2ECurlUpstreamChangedMidBody(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	const path, size, at = "/curl/changed.bin", 8 << 20, 2 << 20
	o, p, u := e2eSetup(t, path, size)
	o.ChangeVersionAt(path, at)
	out, hdr := filepath.Join(t.TempDir(), "file"), filepath.Join(t.TempDir(), "h")

	r := curl(t, p, clientTimeout, u, "-o", out, "-D", hdr)
	if r.code != 18 { // CURLE_PARTIAL_FILE
		t.Errorf("download across a version change: %v; want exit 18 (partial file)", r)
	}
	n := fileSize(t, out)
	if n >= size {
		t.Errorf("download across a version change wrote %d bytes, want fewer than %d", n, size)
	}
	if got, want := fileSum(t, out), prefixSum(0, n); got != want {
		t.Errorf("the %d bytes curl got are not a prefix of version 0: sha256 %s, want %s", n, got, want)
	}

	out2 := filepath.Join(t.TempDir(), "file2")
	if r := curl(t, p, clientTimeout, u, "-o", out2, "-D", hdr); r.code != 0 {
		t.Fatalf("download after the change: %v", r)
	}
	if got, want := fileSum(t, out2), testorigin.Sum(1, size); got != want {
		t.Errorf("download after the change: sha256 %s, want version 1's %s", got, want)
	}
	if status, h, dump := readHeaderDump(t, hdr); status != http.StatusOK || h.Get("ETag") != `"v1-`+fmt.Sprint(size)+`"` {
		t.Errorf("download after the change: status %d, ETag %q; want 200 and version 1's ETag\n%s", status, h.Get("ETag"), dump)
	}
}

// TestE2ESignalWithDownloadInFlight sends SIGTERM while a client is
// stuck on an upstream that hangs at 3 MiB. The proxy must still exit 0
// within stopTimeout (it waits shutdownGrace for the response, then closes
// it), the client must see a cut body, and a new proxy on
// the same cache directory must serve the kept 3 MiB (PARTIAL).
func TestE2ESignalWithDownloadInFlight(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	const path, size, stall = "/curl/inflight.bin", 8 << 20, 3 << 20
	o := testorigin.New(t)
	o.Set(path, testorigin.Resource{Size: size, Validators: testorigin.StrongETag, CacheControl: cacheFor})
	o.StallAt(path, stall)
	u := o.URL + path
	cacheDir := t.TempDir()
	out := filepath.Join(t.TempDir(), "file")
	p1 := startProxy(t, cacheDir)

	done := make(chan result, 1)
	go func() { done <- curl(t, p1, clientTimeout, u, "-o", out) }()
	// Wait until the proxy has sent everything before the stall; curl keeps
	// up to one stdio buffer of it unwritten while it waits, hence the slack.
	deadline := time.Now().Add(10 * time.Second)
	for n := int64(0); n < stall-64<<10; {
		if time.Now().After(deadline) {
			t.Fatalf("curl has %d bytes after 10s, want %d before the stall", n, stall)
		}
		time.Sleep(20 * time.Millisecond)
		if fi, err := os.Stat(out); err == nil {
			n = fi.Size()
		}
	}
	p1.signalAndWait(t, syscall.SIGTERM)
	select {
	case r := <-done:
		if r.code != 18 && r.code != 56 { // partial file; failure receiving data
			t.Errorf("client of a proxy that shut down mid-response: %v; want exit 18 or 56 (cut body)", r)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("curl still running 5s after the proxy exited")
	}
	if t.Failed() {
		return
	}

	o.ResetCounts()
	p2 := startProxy(t, cacheDir)
	hdr := filepath.Join(t.TempDir(), "h")
	if r := curl(t, p2, clientTimeout, u, "-o", out, "-D", hdr); r.code != 0 {
		t.Fatalf("download after restart: %v", r)
	}
	if got, want := fileSum(t, out), testorigin.Sum(0, size); got != want {
		t.Errorf("file after restart: sha256 %s, want %s", got, want)
	}
	if status, h, dump := readHeaderDump(t, hdr); status != http.StatusOK || h.Get("X-Cache") != "PARTIAL" {
		t.Errorf("after restart: status %d, X-Cache %q; want 200, PARTIAL\n%s", status, h.Get("X-Cache"), dump)
	}
	if got, want := o.PathBodyBytes(path), int64(size-stall); got != want {
		t.Errorf("after restart the origin sent %d body bytes, want %d (only what was missing)", got, want)
	}
}

// checkCurlResumed checks what curl -C - left after resuming at partial: the
// whole file of version 0 in out, and in the header dump hdr a 206 for the
// rest, served partly or wholly from the cache.
func checkCurlResumed(t *testing.T, out, hdr string, partial, size int64) {
	t.Helper()
	if got, want := fileSum(t, out), testorigin.Sum(0, size); got != want {
		t.Errorf("resumed file (%d bytes): sha256 = %s, want %s", fileSize(t, out), got, want)
	}
	status, h, dump := readHeaderDump(t, hdr)
	wantCR := fmt.Sprintf("bytes %d-%d/%d", partial, size-1, size)
	if xc := h.Get("X-Cache"); status != http.StatusPartialContent || (xc != "PARTIAL" && xc != "HIT") || h.Get("Content-Range") != wantCR {
		t.Errorf("resume: status %d, X-Cache %q, Content-Range %q; want 206, PARTIAL or HIT, %q\n%s",
			status, xc, h.Get("Content-Range"), wantCR, dump)
	}
}

// TestSignalAtOnce: a SIGTERM sent the moment the proxy accepts
// connections (as a script or systemd may) shuts it down gracefully (exit
// status 0), not by the signal's default action: the handler is in place
// before the listener. Found by the chaos test, whose last kill-and-restart
// is followed at once by the cleanup's SIGTERM. The dial is polled without
// a pause, so the signal lands within a few hundred microseconds of the
// listen.
func TestSignalAtOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range 10 {
		addr := freeAddr(t)
		p := launch(t, addr, "--listen", addr, "--cache-dir", dir)
		deadline := time.Now().Add(startTimeout)
		for {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			}
			select {
			case <-p.done:
				t.Fatalf("start %d: exited before serving: %v\n%s", i, p.waitErr, p.log())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("start %d: not accepting after %v\n%s", i, startTimeout, p.log())
			}
		}
		p.signalAndWait(t, syscall.SIGTERM)
		if t.Failed() {
			t.Fatalf("start %d: stderr:\n%s", i, p.log())
		}
	}
}
