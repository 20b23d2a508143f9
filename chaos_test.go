package main

// The chaos test (issue 9): random fault schedules through the real binary,
// over plain HTTP and HTTPS through interception
// — drops at random offsets, stalls, 5xx answers, version changes, lying
// 206s, clients that abort or ask for ranges, concurrent clients, SIGKILL
// of the proxy — and after each schedule the properties DESIGN promises:
// every response's bytes are one version's bytes at the right offsets, a
// response that ends cleanly is complete, the index claims only correct
// bytes, and the process is alive within its memory and descriptor bounds.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/internal/testorigin"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

const (
	// chaosSeed seeds the schedules; RESUMEPROXY_CHAOS_SEED overrides it.
	chaosSeed = 20261201
	// chaosSchedules is how many schedules make test runs;
	// RESUMEPROXY_CHAOS_N overrides it (make soak N=1000).
	chaosSchedules = 100
	// chaosKillEvery: every this many schedules, the proxy is killed with
	// SIGKILL while the last one's clients may still be reading, the index
	// is checked, and a new proxy starts on the same cache.
	chaosKillEvery = 10
	// chaosMaxRSS and chaosMaxFDs bound the proxy process after each
	// schedule. The race detector multiplies memory several times.
	chaosMaxRSS = 512 << 20
	chaosMaxFDs = 256
)

// TestChaos runs the schedules. A failure names the schedule, its seed and
// what it did, so `RESUMEPROXY_CHAOS_SEED=S RESUMEPROXY_CHAOS_N=K` replays
// it.
func TestChaos(t *testing.T) {
	runChaos(t, chaosVariant{config: "fill_ahead: 1MiB\n", minSize: 32 << 10, doublings: 8, schedules: chaosSchedules})
}

// TestChaosSegmented runs the schedules over segmented fills (issue 12):
// files of 1 to 8 MiB split into 1 MiB segments, up to four at once (a
// 4 MiB fill_ahead shared by four connections), with the same faults, so
// that drops, stalls, version changes and lying 206s land on segments and
// on the first fill a segmenter shrinks, and kills catch segments in
// flight. Fewer schedules than TestChaos: each moves more bytes.
func TestChaosSegmented(t *testing.T) {
	runChaos(t, chaosVariant{config: "fill_ahead: 4MiB\nsegments:\n  min_size: 1MiB\n", minSize: 1 << 20, doublings: 3,
		schedules: chaosSegmentedSchedules, segmented: true})
}

// chaosSegmentedSchedules is TestChaosSegmented's share of make test.
const chaosSegmentedSchedules = 40

// chaosVariant is what one chaos test chooses: the proxy's config beside
// chaosConfig's, and the schedules' sizes (minSize doubled up to
// doublings-1 times, plus up to as much again) and number (the default of
// RESUMEPROXY_CHAOS_N).
type chaosVariant struct {
	config    string
	minSize   int64
	doublings int
	schedules int
	// segmented: the run must have asked the origin for segments (a test
	// of segments that never split a download would test nothing).
	segmented bool
}

func runChaos(t *testing.T, v chaosVariant) {
	seed := envInt(t, "RESUMEPROXY_CHAOS_SEED", chaosSeed)
	n := envInt(t, "RESUMEPROXY_CHAOS_N", v.schedules)
	t.Logf("chaos: seed %d, %d schedules (RESUMEPROXY_CHAOS_SEED, RESUMEPROXY_CHAOS_N)", seed, n)
	c := &chaos{t: t, origins: [2]*testorigin.Origin{testorigin.New(t), testorigin.NewTLS(t)}, dir: t.TempDir(), maxVersion: map[string]int{}}
	caDir := newCADir(t)
	c.args = append(chaosConfig(t, v.config), mitmFlags(caDir, originPort(t, c.origins[1]))...)
	c.env = []string{"SSL_CERT_FILE=" + c.origins[1].CAFile}
	c.clientTLS = &tls.Config{RootCAs: x509.NewCertPool()}
	if !c.clientTLS.RootCAs.AppendCertsFromPEM([]byte(readFile(t, filepath.Join(caDir, "ca.pem")))) {
		t.Fatal("our CA: no certificate in ca.pem")
	}
	c.start()
	stats := map[string]int{}
	segments := 0
	for i := range n {
		s := newSchedule(rand.New(rand.NewPCG(uint64(seed), uint64(i))), i, c.origins, v)
		c.maxVersion[s.url()] = s.versions()
		s.install()
		results := c.run(s)
		for _, r := range results {
			stats[r.outcome()]++
			if err := r.check(s); err != nil {
				t.Fatalf("schedule %d (seed %d): %v\nschedule: %s\nresumeproxy stderr:\n%s", i, seed, err, s, c.p.log())
			}
		}
		segments += segmentAsks(s)
		c.checkProcess(i)
		if i%chaosKillEvery == chaosKillEvery-1 {
			c.killAndCheck(i)
		}
	}
	t.Logf("chaos: outcomes %v; %d segment requests", stats, segments)
	if v.segmented && n >= 10 && segments == 0 {
		t.Errorf("%d schedules of 1-8 MiB files asked the origin for no segment; want segmented fills", n)
	}
}

// segmentAsks counts the origin requests of s that look like segments: a
// bounded range of the version the proxy holds (If-Match) ending on a
// segment boundary (1 MiB here) short of the end. A client's own range
// ends there by chance only (1 in a MiB).
func segmentAsks(s *schedule) int {
	n := 0
	for _, r := range s.origin.Requests(s.path) {
		var a, b int64
		if r.Header.Get("If-Match") == "" {
			continue
		}
		if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &a, &b); err == nil && (b+1)%(1<<20) == 0 && b+1 < s.res.Size {
			n++
		}
	}
	return n
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

// chaosConfig makes upstream failures cheap to recover from: a stall is
// noticed after 300 ms, retries back off from 5 ms, and checkpoints every
// 64 KiB so kills find many claims to check; a client that takes nothing
// for 500 ms is cut. extra (YAML) adds the variant's settings.
func chaosConfig(t *testing.T, extra string) []string {
	cfg := filepath.Join(t.TempDir(), "chaos.yaml")
	body := extra + "checkpoint_interval: 64KiB\nsync_interval: 1MiB\nclient_write_timeout: 500ms\n" +
		"upstream:\n  retries: 6\n  retry_window: 10s\n  backoff_initial: 5ms\n  backoff_max: 50ms\n  idle_timeout: 300ms\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"--config", cfg}
}

// chaos is the state of one run: the origins (plain, and TLS reached
// through interception), the proxy, its cache.
type chaos struct {
	t       *testing.T
	origins [2]*testorigin.Origin
	dir     string
	args    []string
	env     []string
	p       *proxyProc
	client  *http.Client
	// clientTLS trusts our interception CA.
	clientTLS *tls.Config
	// maxVersion is, per URL, the highest version it may have served.
	maxVersion map[string]int
}

func (c *chaos) start() {
	c.p = startProxyEnv(c.t, c.env, c.dir, c.args...)
	pu, _ := url.Parse(c.p.URL())
	c.client = &http.Client{
		Transport: &http.Transport{Proxy: http.ProxyURL(pu), DisableCompression: true, MaxIdleConnsPerHost: 8, TLSClientConfig: c.clientTLS},
		Timeout:   time.Minute,
	}
}

// schedule is one random scenario on its own path, over plain HTTP or
// HTTPS through interception.
type schedule struct {
	i      int
	origin *testorigin.Origin
	path   string
	res    testorigin.Resource
	// steps run one after another; the clients of a step run at once.
	steps []step
}

// step is the faults queued before a round of clients, and the clients.
type step struct {
	bumpVersion bool    // SetVersion(+1) before the step
	drops       []int64 // DropAt offsets
	stallAt     int64   // StallAt offset, -1 for none
	changeAt    int64   // ChangeVersionAt offset, -1 for none
	fail        int     // FailNext status, 0 for none
	lie         int64   // LieContentRange shift, 0 for none
	clients     []clientPlan
}

// clientPlan is what one client does: ask for [start, end) (end -1: to the
// end; start -1: the whole file without Range), stop after limit bytes
// (-1: read all), and stop reading for chaosReaderPause after pauseAt
// bytes (-1: never), which outlasts the proxy's client write timeout.
type clientPlan struct {
	start, end, limit, pauseAt int64
}

// chaosReaderPause is how long a pausing client stops reading: longer
// than client_write_timeout in chaosConfig, so the proxy may cut it.
const chaosReaderPause = 700 * time.Millisecond

func newSchedule(rng *rand.Rand, i int, origins [2]*testorigin.Origin, v chaosVariant) *schedule {
	size := v.minSize << rng.IntN(v.doublings) // TestChaos: 32 KiB .. 4 MiB
	size += rng.Int64N(size)
	s := &schedule{i: i, origin: origins[rng.IntN(2)], path: "/chaos/" + strconv.Itoa(i)}
	s.res = testorigin.Resource{Size: size, CacheControl: pick(rng, "max-age=3600", "max-age=3600", "max-age=3600", "", "no-store")}
	s.res.Validators = []testorigin.Validators{testorigin.StrongETag, testorigin.StrongETag, testorigin.StrongETag,
		testorigin.LastModifiedOnly, testorigin.WeakETag, testorigin.NoValidator}[rng.IntN(6)]
	s.res.Chunked = rng.IntN(20) == 0
	for range 1 + rng.IntN(3) {
		s.steps = append(s.steps, newStep(rng, size))
	}
	return s
}

func newStep(rng *rand.Rand, size int64) step {
	off := func() int64 { return rng.Int64N(size) }
	st := step{stallAt: -1, changeAt: -1, bumpVersion: rng.IntN(8) == 0}
	for range rng.IntN(3) {
		st.drops = append(st.drops, off())
	}
	if rng.IntN(6) == 0 {
		st.stallAt = off()
	}
	if rng.IntN(8) == 0 {
		st.changeAt = off()
	}
	if rng.IntN(8) == 0 {
		st.fail = []int{500, 502, 503, 429}[rng.IntN(4)]
	}
	if rng.IntN(10) == 0 {
		st.lie = rng.Int64N(4096) - 2048
	}
	for range 1 + rng.IntN(3) {
		st.clients = append(st.clients, newClient(rng, size))
	}
	return st
}

func newClient(rng *rand.Rand, size int64) clientPlan {
	cp := clientPlan{start: -1, end: -1, limit: -1, pauseAt: -1}
	switch rng.IntN(6) {
	case 0: // a range
		cp.start = rng.Int64N(size)
		cp.end = cp.start + 1 + rng.Int64N(size-cp.start)
	case 1: // resume to the end
		cp.start = rng.Int64N(size)
	}
	if rng.IntN(4) == 0 {
		cp.limit = rng.Int64N(size)
	}
	if rng.IntN(40) == 0 {
		cp.pauseAt = rng.Int64N(size)
	}
	return cp
}

func pick(rng *rand.Rand, vs ...string) string { return vs[rng.IntN(len(vs))] }

// versions is the highest version the schedule can make the origin serve.
func (s *schedule) versions() int {
	v := 0
	for _, st := range s.steps {
		if st.bumpVersion {
			v++
		}
		if st.changeAt >= 0 {
			v++
		}
	}
	return v
}

func (s *schedule) install() { s.origin.Set(s.path, s.res) }

func (s *schedule) url() string { return s.origin.URL + s.path }

func (s *schedule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s size=%d validators=%d cache-control=%q chunked=%v", s.url(), s.res.Size, s.res.Validators, s.res.CacheControl, s.res.Chunked)
	for i, st := range s.steps {
		fmt.Fprintf(&b, "\n  step %d: bump=%v drops=%v stall=%d change=%d fail=%d lie=%d clients=%v",
			i, st.bumpVersion, st.drops, st.stallAt, st.changeAt, st.fail, st.lie, st.clients)
	}
	return b.String()
}

// run plays the schedule's steps and returns every client's result.
func (c *chaos) run(s *schedule) []*chaosResult {
	var all []*chaosResult
	for _, st := range s.steps {
		c.queue(s, st)
		results := make([]*chaosResult, len(st.clients))
		var wg sync.WaitGroup
		for i, cp := range st.clients {
			wg.Go(func() { results[i] = c.fetch(s, cp) })
		}
		wg.Wait()
		all = append(all, results...)
	}
	return all
}

func (c *chaos) queue(s *schedule, st step) {
	o := s.origin
	if st.bumpVersion {
		r, _ := o.Resource(s.path)
		o.SetVersion(s.path, r.Version+1)
	}
	o.DropAt(s.path, st.drops...)
	if st.stallAt >= 0 {
		o.StallAt(s.path, st.stallAt)
	}
	if st.changeAt >= 0 {
		o.ChangeVersionAt(s.path, st.changeAt)
	}
	if st.fail != 0 {
		o.FailNext(s.path, st.fail, 1)
	}
	if st.lie != 0 {
		o.LieContentRange(s.path, st.lie)
	}
}

// chaosResult is what one client got.
type chaosResult struct {
	plan   clientPlan
	status int
	header http.Header
	body   []byte
	err    error // the request's or the body's; nil: it ended cleanly
	read   bool  // the body was read to its end (not stopped at limit)
}

func (c *chaos) fetch(s *schedule, cp clientPlan) *chaosResult {
	r := &chaosResult{plan: cp}
	req, _ := http.NewRequest(http.MethodGet, s.url(), nil)
	if cp.start >= 0 {
		rs := "bytes=" + strconv.FormatInt(cp.start, 10) + "-"
		if cp.end >= 0 {
			rs += strconv.FormatInt(cp.end-1, 10)
		}
		req.Header.Set("Range", rs)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		r.err = err
		return r
	}
	defer resp.Body.Close()
	r.status, r.header = resp.StatusCode, resp.Header
	var body io.Reader = resp.Body
	if cp.limit >= 0 {
		body = io.LimitReader(resp.Body, cp.limit)
	}
	var buf bytes.Buffer
	if cp.pauseAt >= 0 {
		_, r.err = io.CopyN(&buf, body, cp.pauseAt)
		time.Sleep(chaosReaderPause) // a client that stops reading
	}
	if r.err == nil {
		_, r.err = io.Copy(&buf, body)
	}
	if errors.Is(r.err, io.EOF) {
		r.err = nil // CopyN: the body ended before pauseAt
	}
	r.body = buf.Bytes()
	r.read = cp.limit < 0 || int64(len(r.body)) < cp.limit
	return r
}

func (r *chaosResult) outcome() string {
	switch {
	case r.status == 0:
		return "no response"
	case r.err != nil:
		return strconv.Itoa(r.status) + " cut"
	case !r.read:
		return strconv.Itoa(r.status) + " abandoned"
	}
	return strconv.Itoa(r.status) + " " + r.header.Get("X-Cache")
}

// check asserts what DESIGN promises of one response: its bytes are those
// of one version at the offsets it claims (never two versions, never
// misplaced: invariants 1 and 3), and a body that ended cleanly is whole
// (invariant 4).
func (r *chaosResult) check(s *schedule) error {
	if r.status != http.StatusOK && r.status != http.StatusPartialContent {
		return nil // errors, 304s, 416s: no content to check
	}
	start, want, err := r.extent(s)
	if err != nil {
		return err
	}
	lo, hi := 0, s.versions()
	if v, ok := etagVersion(r.header.Get("ETag")); ok {
		lo, hi = v, v // the bytes must be those of the version the ETag names
	}
	if matchingVersion(r.body, start, lo, hi) < 0 {
		return fmt.Errorf("%v: %d %s (ETag %s), %d bytes at %d are not those of one version in [%d, %d] (mixed or misplaced)",
			r.plan, r.status, r.header.Get("X-Cache"), r.header.Get("ETag"), len(r.body), start, lo, hi)
	}
	if r.err == nil && r.read && want >= 0 && int64(len(r.body)) != want {
		return fmt.Errorf("%v: %d %s ended cleanly after %d bytes, want %d (a clean short body)",
			r.plan, r.status, r.header.Get("X-Cache"), len(r.body), want)
	}
	return nil
}

// extent returns where the body starts in the file and how long a whole
// one is (-1 when unknown: a chunked 200).
func (r *chaosResult) extent(s *schedule) (start, length int64, err error) {
	if r.status == http.StatusOK {
		if cl := r.header.Get("Content-Length"); cl != "" {
			n, _ := strconv.ParseInt(cl, 10, 64)
			return 0, n, nil
		}
		return 0, -1, nil
	}
	cr, err := rangeutil.ParseContentRange(r.header.Get("Content-Range"))
	if err != nil {
		return 0, 0, fmt.Errorf("%v: 206 with Content-Range %q: %v", r.plan, r.header.Get("Content-Range"), err)
	}
	if cr.Size != s.res.Size && cr.Size >= 0 {
		return 0, 0, fmt.Errorf("%v: 206 claims a file of %d bytes, want %d", r.plan, cr.Size, s.res.Size)
	}
	return cr.Range.Start, cr.Range.Len(), nil
}

// etagVersion returns the version a test origin ETag ("v<version>-<size>",
// weak or strong) names.
func etagVersion(tag string) (int, bool) {
	_, rest, ok := strings.Cut(tag, `"v`)
	if !ok {
		return 0, false
	}
	num, _, _ := strings.Cut(rest, "-")
	v, err := strconv.Atoi(num)
	return v, err == nil
}

// matchingVersion returns the first version in [lo, hi] whose bytes at off
// are b, or -1 if there is none.
func matchingVersion(b []byte, off int64, lo, hi int) int {
	want := make([]byte, len(b))
	for v := lo; v <= hi; v++ {
		io.ReadFull(testorigin.NewReader(v, off, int64(len(b))), want)
		if bytes.Equal(b, want) {
			return v
		}
	}
	return -1
}

// checkProcess asserts the proxy is alive and within its bounds.
func (c *chaos) checkProcess(i int) {
	select {
	case <-c.p.done:
		c.t.Fatalf("after schedule %d: resumeproxy exited: %v\n%s", i, c.p.waitErr, c.p.log())
	default:
	}
	pid := c.p.cmd.Process.Pid
	if rss := procRSS(c.t, pid); rss > chaosMaxRSS {
		c.t.Fatalf("after schedule %d: RSS %d MiB, want ≤ %d MiB", i, rss>>20, chaosMaxRSS>>20)
	}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		c.t.Fatalf("after schedule %d: %v", i, err)
	}
	if len(fds) > chaosMaxFDs {
		c.t.Fatalf("after schedule %d: %d open descriptors, want ≤ %d", i, len(fds), chaosMaxFDs)
	}
}

// procRSS reads a process's resident set size from /proc.
func procRSS(t *testing.T, pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("reading /proc/%d/status: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// killAndCheck kills the proxy with SIGKILL, checks every claim of the
// index against the origin's content, and starts a new proxy.
func (c *chaos) killAndCheck(i int) {
	c.client.CloseIdleConnections()
	if err := c.p.kill9(); err != nil {
		c.t.Fatalf("after schedule %d: %v", i, err)
	}
	if err := checkAllClaims(c.dir, c.maxVersion); err != nil {
		c.t.Fatalf("after the SIGKILL that followed schedule %d: %v", i, err)
	}
	c.start()
}

// checkAllClaims opens the cache as a restarted proxy would and compares
// every byte the index claims, for every URL, with one version of the
// origin's content (DESIGN invariant 5; invariant 1: one version per body
// file).
func checkAllClaims(dir string, maxVersion map[string]int) (err error) {
	s, err := cache.Open(dir, cache.Options{})
	if err != nil {
		return fmt.Errorf("cache.Open(%s): %w", dir, err)
	}
	defer func() {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the store: %w", cerr)
		}
	}()
	for u, maxV := range maxVersion {
		if err := checkEntryClaims(s, u, maxV); err != nil {
			return err
		}
	}
	return nil
}

func checkEntryClaims(s *cache.Store, key string, maxV int) error {
	e, err := s.Get(key)
	if err != nil || e == nil {
		return err
	}
	defer e.Release()
	m := e.Meta()
	version := -1
	for _, r := range m.Ranges.Ranges() {
		b := make([]byte, r.Len())
		if _, err := e.ReadAt(b, r.Start); err != nil {
			return fmt.Errorf("%s: claimed bytes %v unreadable: %w", key, r, err)
		}
		v := matchingVersion(b, r.Start, 0, maxV)
		if v < 0 || (version >= 0 && v != version) {
			return fmt.Errorf("%s: claimed bytes %v are not those of one version (this range: %d, earlier: %d)", key, r, v, version)
		}
		version = v
	}
	return nil
}
