package proxy

// The bar for real clients: pip, npm and go, each pointed at a
// registry on the HTTPS test origin through the proxy, have their download
// killed at 40% and are run again; the origin must send at most the file
// size + 8 MiB for the artefact in total. The cut is at a byte offset, not
// a moment: the origin holds the artefact's first response at 40%
// (testorigin.StallAt), and the client's whole process group is killed once
// the origin has sent that much.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

const (
	// registryBase is the URL clients reach the registries by: a name under
	// origin.test, which the proxy's dialer sends to the origin. Not
	// 127.0.0.1: Go's HTTP client never uses a proxy for loopback hosts.
	registryBase = "https://registry.origin.test"
	// artefactPayload is the payload of each package; 40% of the artefact
	// is about 13 MiB.
	artefactPayload = 32 * mib
	// resumeSlack is what the bar allows the origin to send beyond the
	// artefact's size.
	resumeSlack = 8 * mib
	// clientTimeout bounds each run of a real client.
	clientTimeout = 3 * time.Minute
	// originWait bounds each wait on the origin: the first run reaching
	// the cut, the stalled response released after the kill.
	originWait = time.Minute
)

// TestPipThroughProxy: pip download of a wheel, killed at 40% and run
// again, gets the wheel the index announced and costs the origin at most
// its size + 8 MiB.
func TestPipThroughProxy(t *testing.T) {
	needClient(t, "python3 with pip", "python3 python3-pip", "python3", "-m", "pip", "--version")
	h := newTLSHarness(t)
	const name, version = "resume-demo", "1.0.0"
	path := h.origin.AddPyPI(name, version, artefactPayload)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	c := realClient{dir: dir, name: "python3",
		env: h.clientEnv(dir, "PIP_CONFIG_FILE="+os.DevNull, "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1"),
		args: []string{"-m", "pip", "download", "--no-deps", "--no-cache-dir", "--proxy", h.proxyURL(),
			"--cert", h.caFile, "--index-url", registryBase + "/simple/", "-d", out, name + "==" + version}}
	killAndRerun(t, h, path, c)

	want := sha256Hex(testorigin.Wheel(name, version, artefactPayload))
	if got := fileSum(t, filepath.Join(out, testorigin.WheelFileName(name, version))); got != want {
		t.Errorf("downloaded wheel sha256 = %s, want %s", got, want)
	}
}

// TestNpmThroughProxy: npm install of a package, killed at 40% and run
// again, installs the right data.bin and costs the origin at most the
// tarball's size + 8 MiB.
func TestNpmThroughProxy(t *testing.T) {
	needClient(t, "npm", "nodejs npm", "npm", "--version")
	h := newTLSHarness(t)
	const name, version = "resume-demo", "1.0.0"
	path := h.origin.AddNpm(registryBase, name, version, artefactPayload)
	dir := t.TempDir()
	prefix := filepath.Join(dir, "prefix")
	c := realClient{dir: dir, name: "npm",
		env: h.clientEnv(dir, "NPM_CONFIG_USERCONFIG="+filepath.Join(dir, "npmrc"),
			"NPM_CONFIG_GLOBALCONFIG="+filepath.Join(dir, "npmrc-global"), "NPM_CONFIG_UPDATE_NOTIFIER=false"),
		args: []string{"install", "--prefix", prefix, "--cache", filepath.Join(dir, "npmcache"),
			"--registry", registryBase + "/", "--cafile", h.caFile, "--proxy", h.proxyURL(), "--https-proxy", h.proxyURL(),
			"--no-audit", "--no-fund", name + "@" + version}}
	killAndRerun(t, h, path, c)

	got := fileSum(t, filepath.Join(prefix, "node_modules", name, "data.bin"))
	if want := testorigin.Sum(0, artefactPayload); got != want {
		t.Errorf("installed data.bin sha256 = %s, want Sum(0, %d) = %s", got, artefactPayload, want)
	}
}

// TestGoModDownloadThroughProxy: go mod download of a module, killed at
// 40% and run again, leaves the right zip in the module cache and costs
// the origin at most its size + 8 MiB.
func TestGoModDownloadThroughProxy(t *testing.T) {
	needClient(t, "go", "golang-go", "go", "version")
	h := newTLSHarness(t)
	const modPath, version = "origin.test/Demo/mod", "v1.0.0"
	path := h.origin.AddGoModule(modPath, version, artefactPayload)
	dir := t.TempDir()
	modCache := filepath.Join(dir, "modcache")
	c := realClient{dir: dir, name: "go",
		env: h.clientEnv(dir, "GOPROXY="+registryBase, "GOSUMDB=off", "GONOSUMDB=", "GONOPROXY=", "GOPRIVATE=", "GOINSECURE=",
			// -modcacherw: the module cache is read-only otherwise, and
			// t.TempDir could not remove it.
			"GOFLAGS=-mod=mod -modcacherw", "GOMODCACHE="+modCache, "GOCACHE="+filepath.Join(dir, "gocache"),
			// Our CA only: SSL_CERT_DIR would add the system's.
			"SSL_CERT_FILE="+h.caFile, "SSL_CERT_DIR="+t.TempDir(),
			"GOTOOLCHAIN=local", "GOENV=off", "GOWORK=off"),
		args: []string{"mod", "download", "-json", modPath + "@" + version}}
	out := killAndRerun(t, h, path, c)

	var got struct{ Zip, Error string }
	if err := json.Unmarshal(out, &got); err != nil || got.Error != "" {
		t.Fatalf("go mod download -json = %s (%v), want no Error", out, err)
	}
	if !strings.HasPrefix(got.Zip, filepath.Join(modCache, "cache", "download")+string(filepath.Separator)) {
		t.Errorf("go mod download: Zip = %s, want it under GOMODCACHE/cache/download", got.Zip)
	}
	if want := sha256Hex(testorigin.GoModuleZip(modPath, version, artefactPayload)); fileSum(t, got.Zip) != want {
		t.Errorf("module cache zip %s sha256 = %s, want %s", got.Zip, fileSum(t, got.Zip), want)
	}
}

// killAndRerun is the bar for one client: its first run is killed once the
// origin has sent 40% of the artefact at path (and holds the rest back),
// its second run must succeed, and the origin must have sent at most the
// artefact's size + resumeSlack, the rest by a resume. It returns the
// second run's standard output.
func killAndRerun(t *testing.T, h *harness, path string, c realClient) []byte {
	t.Helper()
	res, ok := h.origin.Resource(path)
	if !ok {
		t.Fatalf("origin.Resource(%s): no artefact", path)
	}
	cut := res.Size * 4 / 10
	released := h.origin.StallAt(path, cut)

	began := time.Now()
	first := c.start(t)
	h.waitSent(t, path, cut, first)
	first.kill()
	<-first.done
	killedAfter := time.Since(began)
	// Quick abort stops the fill once its only client is gone, which
	// releases the stalled response; a second run started before then
	// would join the stopping fill, which is allowed but not what we test.
	select {
	case <-released:
	case <-time.After(originWait):
		t.Fatalf("the origin still sends %s %v after its client was killed: the proxy kept the fill going", path, originWait)
	}
	atKill := h.origin.PathBodyBytes(path)

	began = time.Now()
	out := c.run(t)
	rerun := time.Since(began)
	sent := h.origin.PathBodyBytes(path)
	t.Logf("%s: origin sent %d bytes of the %d-byte %s (+%.2f MiB): %d before the kill (%v in), %d on the second run (%v)",
		c.name, sent, res.Size, path, float64(sent-res.Size)/mib, atKill, killedAfter.Round(time.Millisecond),
		sent-atKill, rerun.Round(time.Millisecond))
	if sent > res.Size+resumeSlack {
		t.Errorf("origin PathBodyBytes(%s) = %d, want ≤ %d (size %d + 8 MiB)", path, sent, res.Size+resumeSlack, res.Size)
	}
	if reqs := h.origin.Requests(path); !resumed(reqs, res.ETag()) {
		t.Errorf("origin requests for %s = %s, want one with Range and If-Range: %s (a resume)", path, showRequests(reqs), res.ETag())
	}
	return out
}

// waitSent waits until the origin has sent n body bytes of path, failing
// the test if p exits first or originWait passes.
func (h *harness) waitSent(t *testing.T, path string, n int64, p *proc) {
	t.Helper()
	deadline := time.After(originWait)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for h.origin.PathBodyBytes(path) < n {
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before the origin sent %d bytes of %s (it sent %d)\n%s",
				p, p.err, n, path, h.origin.PathBodyBytes(path), p.output())
		case <-deadline:
			t.Fatalf("the origin sent %d bytes of %s in %v, want %d before the kill", h.origin.PathBodyBytes(path), path, originWait, n)
		case <-tick.C:
		}
	}
}

// resumed reports whether one of reqs asked for a range under If-Range:
// etag, as a resume of the stored bytes does (RFC 9110 §13.1.5).
func resumed(reqs []testorigin.Request, etag string) bool {
	for _, r := range reqs {
		if strings.HasPrefix(r.Header.Get("Range"), "bytes=") && r.Header.Get("If-Range") == etag {
			return true
		}
	}
	return false
}

// showRequests lists the Range and If-Range of each request, for messages.
func showRequests(reqs []testorigin.Request) string {
	var b strings.Builder
	for i, r := range reqs {
		fmt.Fprintf(&b, "\n  %d: %s Range=%q If-Range=%q", i, r.Method, r.Header.Get("Range"), r.Header.Get("If-Range"))
	}
	return b.String()
}

// proxyURL is the proxy's address as clients take it.
func (h *harness) proxyURL() string { return "http://" + h.ln.Addr().String() }

// clientEnv is the environment of a real client with HOME at home that
// goes through h for https and trusts what its flags say: ours without the
// proxy, CA and client settings that would send it elsewhere or trust
// others (pip's REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE win over --cert),
// then the proxy with no exceptions, then extra. Later entries win.
func (h *harness) clientEnv(home string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !scrubbed(name) {
			env = append(env, kv)
		}
	}
	env = append(env, "HOME="+home, "HTTPS_PROXY="+h.proxyURL(), "https_proxy="+h.proxyURL(), "NO_PROXY=", "no_proxy=")
	return append(env, extra...)
}

// scrubbed reports whether the variable name is left out of a client's
// environment.
func scrubbed(name string) bool {
	up := strings.ToUpper(name)
	switch up {
	case "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS":
		return true
	}
	return strings.HasSuffix(up, "_PROXY") || strings.HasPrefix(up, "PIP_") || strings.HasPrefix(up, "NPM_CONFIG_")
}

// needClient fails the test (under CI) or skips it (elsewhere) unless the
// command name args runs.
func needClient(t *testing.T, what, aptPackages, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	err := exec.CommandContext(ctx, name, args...).Run()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s: %v; CI must have it: sudo apt-get install -y %s (scripts/install-test-deps.sh)", what, err, aptPackages)
	}
	t.Skipf("%s: %v; install it with: sudo apt-get install -y %s", what, err, aptPackages)
}

// realClient is one command line of a real client, run in dir with env.
type realClient struct {
	dir  string
	env  []string
	name string
	args []string
}

func (c realClient) String() string { return c.name + " " + strings.Join(c.args, " ") }

// proc is a running client in a process group of its own, so that a kill
// also reaches what it spawned (the pyenv shim's python, npm's children).
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	// done is closed when the client has exited and its output is in.
	done chan struct{}
	// err is Wait's result; read it after done.
	err error
}

// start starts c under clientTimeout; the test's cleanup kills its
// process group if anything of it is left.
func (c realClient) start(t *testing.T) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, c.name, c.args...)
	p.cmd.Dir, p.cmd.Env, p.cmd.WaitDelay = c.dir, c.env, 5*time.Second
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Cancel = func() error { p.kill(); return nil }
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("%s: %v", c, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		<-p.done
	})
	return p
}

// run runs c to the end and returns its standard output; the test fails
// with everything the client wrote if it fails.
func (c realClient) run(t *testing.T) []byte {
	t.Helper()
	p := c.start(t)
	<-p.done
	if p.err != nil {
		t.Fatalf("%s: %v\n%s", c, p.err, p.output())
	}
	return p.stdout.Bytes()
}

// kill sends SIGKILL to p's process group. A group already gone (ESRCH) is
// no error: the client ended by itself.
func (p *proc) kill() { _ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) }

func (p *proc) String() string { return strings.Join(p.cmd.Args, " ") }

// output is what p wrote; call it after done.
func (p *proc) output() string {
	return "stdout:\n" + p.stdout.String() + "\nstderr:\n" + p.stderr.String()
}

// fileSum returns the hex sha256 of the file at path.
func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading what the client wrote: %v", err)
	}
	return sha256Hex(b)
}

// sha256Hex returns the hex sha256 of b.
func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
