package main

// End-to-end tests of what the proxy shows of itself (issue 11): the
// metrics against what the origin sent and the client received, the
// access log, the admin pages and who may use them, and ls, purge and
// verify through a running proxy's admin API. The real binary, the test
// origin, 127.0.0.1 only.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/internal/admin"
	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

// viaProxy is an HTTP client whose requests go through p.
func viaProxy(p *proxyProc) *http.Client {
	u, _ := url.Parse(p.URL())
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u), DisableCompression: true}, Timeout: time.Minute}
}

// direct is an HTTP client that never goes through a proxy: for the
// proxy's own pages, in origin form.
var direct = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: time.Minute}

// fetch GETs u with c, reads at most limit body bytes (all when
// negative), closes, and returns how many it read and the X-Cache value.
func fetch(t *testing.T, c *http.Client, u string, limit int64) (int64, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if limit >= 0 {
		r = io.LimitReader(resp.Body, limit)
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		t.Fatalf("GET %s: body after %d bytes: %v", u, n, err)
	}
	return n, resp.Header.Get("X-Cache")
}

// metrics is one scrape of /metrics: sample name with its labels, as the
// text format writes them, to value.
type metrics map[string]float64

// scrape reads p's /metrics.
func scrape(t *testing.T, p *proxyProc) metrics {
	t.Helper()
	resp, err := direct.Get(p.URL() + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %s", resp.Status)
	}
	m := metrics{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m
}

// Names of the samples the tests read.
const (
	mServedCache    = `resumeproxy_served_bytes_total{source="cache"}`
	mServedUpstream = `resumeproxy_served_bytes_total{source="upstream"}`
	mUpstream       = `resumeproxy_upstream_bytes_total`
	mAborts         = `resumeproxy_client_aborts_total`
	mFills          = `resumeproxy_fills_in_progress`
	mResumeClientOK = `resumeproxy_resumes_total{outcome="ok",trigger="client"}`
)

func mRequests(result string) string { return `resumeproxy_requests_total{result="` + result + `"}` }

// waitMetrics scrapes p until ok holds (the proxy counts a request when
// its response has ended, just after the client saw the last byte), or
// fails after 10 s.
func waitMetrics(t *testing.T, p *proxyProc, what string, ok func(metrics) bool) metrics {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := scrape(t, p)
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: metrics now %v", what, m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// near reports whether got is want within 1% (exactly, for 0).
func near(got, want float64) bool {
	return math.Abs(got-want) <= want/100
}

// checkNear reports a counter change that is not want within 1%.
func checkNear(t *testing.T, step, name string, before, after metrics, want float64) {
	t.Helper()
	if got := after[name] - before[name]; !near(got, want) {
		t.Errorf("%s: %s changed by %.0f, want %.0f (±1%%)", step, name, got, want)
	}
}

// TestE2EMetricsAgreeWithOrigin: after a cold download, a warm one, an
// abort and a resume, each counter moved by what the origin sent and the
// client received (±1%).
func TestE2EMetricsAgreeWithOrigin(t *testing.T) {
	t.Parallel()
	const size, bigSize, abortAt = 8 << 20, 16 << 20, 8 << 20
	o := testorigin.New(t)
	o.Set("/m/full.bin", testorigin.Resource{Size: size, CacheControl: cacheFor})
	o.Set("/m/big.bin", testorigin.Resource{Size: bigSize, CacheControl: cacheFor})
	p := startProxy(t, t.TempDir())
	c := viaProxy(p)
	m0 := scrape(t, p)

	// Cold: every byte comes from upstream, once.
	n, xc := fetch(t, c, o.URL+"/m/full.bin", -1)
	m1 := waitMetrics(t, p, "the cold download", func(m metrics) bool { return m[mRequests("miss")] > m0[mRequests("miss")] })
	if n != size || xc != "MISS" {
		t.Fatalf("cold download: %d bytes, X-Cache %q, want %d, MISS", n, xc, size)
	}
	checkNear(t, "cold", mServedUpstream, m0, m1, float64(n))
	checkNear(t, "cold", mServedCache, m0, m1, 0)
	checkNear(t, "cold", mUpstream, m0, m1, float64(o.PathBodyBytes("/m/full.bin")))

	// Warm: every byte from the cache, none upstream.
	before := o.BodyBytes()
	n, xc = fetch(t, c, o.URL+"/m/full.bin", -1)
	m2 := waitMetrics(t, p, "the warm download", func(m metrics) bool { return m[mRequests("hit")] > m1[mRequests("hit")] })
	if n != size || xc != "HIT" {
		t.Fatalf("warm download: %d bytes, X-Cache %q, want %d, HIT", n, xc, size)
	}
	checkNear(t, "warm", mServedCache, m1, m2, float64(n))
	checkNear(t, "warm", mServedUpstream, m1, m2, 0)
	checkNear(t, "warm", mUpstream, m1, m2, float64(o.BodyBytes()-before))

	// Abort: a slow upstream (16 KiB every 2 ms), the client leaves at
	// 8 MiB; the download stops and keeps its bytes.
	o.Drip("/m/big.bin", 16<<10, 2*time.Millisecond)
	n, _ = fetch(t, c, o.URL+"/m/big.bin", abortAt)
	m3 := waitMetrics(t, p, "the abort", func(m metrics) bool {
		return m[mAborts] > m2[mAborts] && m[mFills] == 0
	})
	checkNear(t, "abort", mServedUpstream, m2, m3, float64(n))
	checkNear(t, "abort", mServedCache, m2, m3, 0)
	checkNear(t, "abort", mUpstream, m2, m3, float64(o.PathBodyBytes("/m/big.bin")))
	if got := m3[mRequests("miss")] - m2[mRequests("miss")]; got != 1 {
		t.Errorf("abort: requests{miss} changed by %v, want 1", got)
	}

	// Resume: what was kept comes from the cache, the rest from upstream.
	before = o.PathBodyBytes("/m/big.bin")
	n, xc = fetch(t, c, o.URL+"/m/big.bin", -1)
	m4 := waitMetrics(t, p, "the resume", func(m metrics) bool { return m[mRequests("partial")] > m3[mRequests("partial")] })
	if n != bigSize || xc != "PARTIAL" {
		t.Fatalf("resumed download: %d bytes, X-Cache %q, want %d, PARTIAL", n, xc, bigSize)
	}
	fromOrigin := float64(o.PathBodyBytes("/m/big.bin") - before)
	if fromOrigin < abortAt/2 || fromOrigin > bigSize-abortAt {
		t.Errorf("resume fetched %.0f bytes upstream, want at most %d (the bytes after the abort)", fromOrigin, bigSize-abortAt)
	}
	checkNear(t, "resume", mUpstream, m3, m4, fromOrigin)
	checkNear(t, "resume", mServedUpstream, m3, m4, fromOrigin)
	checkNear(t, "resume", mServedCache, m3, m4, float64(n)-fromOrigin)
	checkNear(t, "resume", mResumeClientOK, m3, m4, 1)
}

// accessLines returns the access log lines (JSON, msg "request") p wrote.
func accessLines(t *testing.T, p *proxyProc) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(p.log(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "request" {
			out = append(out, rec)
		}
	}
	return out
}

// TestE2EAccessLog: one JSON line per request (log.format: json), with the
// client, method, URL, status, X-Cache outcome, bytes by source, resumes,
// duration, and why a MISS was not a hit.
func TestE2EAccessLog(t *testing.T) {
	t.Parallel()
	o := testorigin.New(t)
	o.Set("/log/a.bin", testorigin.Resource{Size: 1 << 20, CacheControl: cacheFor})
	o.Set("/log/private.bin", testorigin.Resource{Size: 1000, CacheControl: "no-store"})
	o.Set("/log/slow.bin", testorigin.Resource{Size: 4 << 20, CacheControl: cacheFor})
	cfg := writeFile(t, "config.yaml", "log:\n  format: json\n")
	p := startProxy(t, t.TempDir(), "--config", cfg)
	c := viaProxy(p)
	fetch(t, c, o.URL+"/log/a.bin", -1)
	fetch(t, c, o.URL+"/log/a.bin", -1)
	fetch(t, c, o.URL+"/log/private.bin", -1)
	o.Drip("/log/slow.bin", 16<<10, 2*time.Millisecond)
	fetch(t, c, o.URL+"/log/slow.bin", 1<<20)
	fetch(t, c, o.URL+"/log/slow.bin?sig=secret", -1)

	deadline := time.Now().Add(10 * time.Second)
	var lines []map[string]any
	for lines = accessLines(t, p); len(lines) < 5 && time.Now().Before(deadline); lines = accessLines(t, p) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(lines) != 5 {
		t.Fatalf("access log has %d request lines, want 5 (one per request):\n%s", len(lines), p.log())
	}
	for _, c := range []struct {
		path, cache, result string
		status              float64
		fromCache           float64 // -1: any
		fromUpstream        float64
		reason              string
		aborted             bool
	}{
		{"/log/a.bin", "MISS", "miss", 200, 0, 1 << 20, "", false},
		{"/log/a.bin", "HIT", "hit", 200, 1 << 20, 0, "", false},
		{"/log/private.bin", "MISS", "miss", 200, 0, 1000, "no-store", false},
		{"/log/slow.bin", "MISS", "miss", 200, 0, -1, "", true},
		{"/log/slow.bin?sig=secret", "MISS", "miss", 200, 0, 4 << 20, "", false},
	} {
		rec := lines[0]
		lines = lines[1:]
		want := o.URL + c.path
		if rec["url"] != want || rec["method"] != "GET" || rec["client"] != "127.0.0.1" || rec["status"] != c.status ||
			rec["cache"] != c.cache || rec["result"] != c.result {
			t.Errorf("access line %v, want url %s, GET from 127.0.0.1, status %v, cache %s, result %s", rec, want, c.status, c.cache, c.result)
		}
		if rec["from_cache"] != c.fromCache || c.fromUpstream >= 0 && rec["from_upstream"] != c.fromUpstream {
			t.Errorf("access line for %s: from_cache %v, from_upstream %v, want %v, %v", c.path, rec["from_cache"], rec["from_upstream"], c.fromCache, c.fromUpstream)
		}
		reason, _ := rec["miss_reason"].(string)
		aborted, _ := rec["client_aborted"].(bool)
		if reason != c.reason || aborted != c.aborted {
			t.Errorf("access line for %s: miss_reason %q, client_aborted %v, want %q, %v", c.path, reason, aborted, c.reason, c.aborted)
		}
		for _, k := range []string{"resumes", "duration", "ttfb", "time", "level"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("access line for %s has no %s: %v", c.path, k, rec)
			}
		}
	}
}

// TestE2EAdminPages: the proxy's own port answers origin-form requests with
// the status page, /healthz, /metrics and the API, and so does --admin; a
// client outside allow gets 403 on both, and PURGE from one does nothing.
func TestE2EAdminPages(t *testing.T) {
	t.Parallel()
	adminAt := freeAddr(t)
	p := startProxy(t, t.TempDir(), "--admin", adminAt)
	for _, base := range []string{p.URL(), "http://" + adminAt} {
		for path, want := range map[string]string{
			"/":           "<title>resumeproxy</title>",
			"/healthz":    "ok",
			"/metrics":    "resumeproxy_requests_total{result=\"hit\"} 0",
			"/api/status": `"downloads":[]`,
		} {
			resp, err := direct.Get(base + path)
			if err != nil {
				t.Fatalf("GET %s%s: %v", base, path, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
				t.Errorf("GET %s%s = %s, %.200q, want 200 with %q", base, path, resp.Status, b, want)
			}
		}
	}

	// A proxy that admits 127.0.0.2 only: this test's client (127.0.0.1)
	// may read nothing, on either port, and may not purge.
	o := testorigin.New(t)
	o.Set("/x", testorigin.Resource{Size: 10, CacheControl: cacheFor})
	adminAt = freeAddr(t)
	cfg := writeFile(t, "config.yaml", "allow: [127.0.0.2/32]\n")
	q := startProxy(t, t.TempDir(), "--config", cfg, "--admin", adminAt)
	for _, u := range []string{q.URL() + "/", q.URL() + "/metrics", q.URL() + "/api/status", "http://" + adminAt + "/api/status", "http://" + adminAt + "/healthz"} {
		resp, err := direct.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s from a client outside allow = %s, want 403", u, resp.Status)
		}
	}
	req, _ := http.NewRequest("PURGE", o.URL+"/x", nil)
	resp, err := viaProxy(q).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("PURGE from a client outside allow = %s, want 403", resp.Status)
	}
}

// TestE2EPurgeMethod: PURGE <URL> sent as a proxy request from this
// machine removes the URL, as in Squid: the next request is a MISS.
func TestE2EPurgeMethod(t *testing.T) {
	t.Parallel()
	o, p, u := e2eSetup(t, "/purge/me.bin", 64<<10)
	c := viaProxy(p)
	fetch(t, c, u, -1)
	if _, xc := fetch(t, c, u, -1); xc != "HIT" {
		t.Fatalf("second GET: X-Cache %q, want HIT", xc)
	}
	purge := func() int {
		req, _ := http.NewRequest("PURGE", u, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := purge(); got != http.StatusOK {
		t.Errorf("PURGE %s = %d, want 200", u, got)
	}
	if got := purge(); got != http.StatusNotFound {
		t.Errorf("PURGE %s again = %d, want 404", u, got)
	}
	before := o.PathBodyBytes("/purge/me.bin")
	if _, xc := fetch(t, c, u, -1); xc != "MISS" || o.PathBodyBytes("/purge/me.bin") == before {
		t.Errorf("GET after PURGE: X-Cache %q, origin sent %d more bytes; want MISS, fetched again", xc, o.PathBodyBytes("/purge/me.bin")-before)
	}
}

// TestE2ECacheCommandsThroughAPI: while a proxy runs (and holds the
// cache), ls, purge and verify go through its admin API, found from the
// config's listen address or given with --admin.
func TestE2ECacheCommandsThroughAPI(t *testing.T) {
	t.Parallel()
	o := testorigin.New(t)
	o.Set("/cli/done.iso", testorigin.Resource{Size: 1 << 20, CacheControl: cacheFor})
	o.Set("/cli/half.iso", testorigin.Resource{Size: 8 << 20, CacheControl: cacheFor})
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := writeFile(t, "config.yaml", fmt.Sprintf("listen: %s\ncache_dir: %s\n", addr, dir))
	p := launch(t, addr, "--config", cfg) // the commands find it from the same config
	if err := p.waitServing(startTimeout); err != nil {
		t.Fatalf("resumeproxy did not start: %v\n%s", err, p.log())
	}
	t.Cleanup(func() { p.signalAndWait(t, syscall.SIGTERM) })
	c := viaProxy(p)
	fetch(t, c, o.URL+"/cli/done.iso", -1)
	o.Drip("/cli/half.iso", 16<<10, 2*time.Millisecond)
	fetch(t, c, o.URL+"/cli/half.iso", 2<<20)
	waitMetrics(t, p, "the abort", func(m metrics) bool { return m[mAborts] == 1 && m[mFills] == 0 })

	stdout, stderr, code := runCmd(t, "ls", "--config", cfg)
	if code != 0 || !strings.Contains(stdout, "complete  1.0 MiB") || !strings.Contains(stdout, o.URL+"/cli/done.iso") ||
		!strings.Contains(stdout, o.URL+"/cli/half.iso") || !strings.Contains(stdout, "2 entries, 1 partial") {
		t.Errorf("ls through the API = exit %d, %q (stderr %q), want both entries, one partial", code, stdout, stderr)
	}
	stdout, _, code = runCmd(t, "ls", "--config", cfg, "--partial")
	if code != 0 || strings.Contains(stdout, "done.iso") || !strings.Contains(stdout, "half.iso") {
		t.Errorf("ls --partial through the API = exit %d, %q, want half.iso alone", code, stdout)
	}
	stdout, stderr, code = runCmd(t, "verify", "--cache-dir", dir, "--admin", addr)
	if code != 0 || !strings.Contains(stdout, "verified 2 entries") || !strings.Contains(stdout, "0 bad") {
		t.Errorf("verify through the API = exit %d, %q (stderr %q), want 2 entries, 0 bad", code, stdout, stderr)
	}
	stdout, stderr, code = runCmd(t, "purge", "--config", cfg, o.URL+"/cli/done.iso")
	if code != 0 || stdout != "purged "+o.URL+"/cli/done.iso\n" {
		t.Errorf("purge through the API = exit %d, %q (stderr %q)", code, stdout, stderr)
	}
	_, stderr, code = runCmd(t, "purge", "--config", cfg, o.URL+"/cli/done.iso")
	if code != 1 || !strings.Contains(stderr, "not in the cache") {
		t.Errorf("purge again through the API = exit %d, stderr %q, want 1, not in the cache", code, stderr)
	}
	stdout, _, code = runCmd(t, "purge", "--config", cfg, "--prefix", o.URL+"/cli/")
	if code != 0 || stdout != "purged "+o.URL+"/cli/half.iso\n" {
		t.Errorf("purge --prefix through the API = exit %d, %q", code, stdout)
	}
	stdout, _, _ = runCmd(t, "ls", "--config", cfg)
	if !strings.HasSuffix(stdout, "0 entries, 0 partial, 0 B stored\n") {
		t.Errorf("ls after the purges = %q, want nothing", stdout)
	}
	// Another cache directory than the running proxy's: refused, not
	// purged elsewhere.
	other := filepath.Join(t.TempDir(), "other")
	_, stderr, code = runCmd(t, "ls", "--cache-dir", other, "--admin", addr)
	if code != 1 {
		t.Errorf("ls of a missing cache = exit %d (stderr %q), want 1", code, stderr)
	}
	var info admin.Info
	resp, err := direct.Get(p.URL() + "/api/info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || info.CacheDir != dir {
		t.Errorf("/api/info = %+v, %v, want cache_dir %s", info, err, dir)
	}
}
