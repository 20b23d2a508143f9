package main

// Crash safety (DESIGN invariant 5, issue 3): a resumeproxy child is killed
// with SIGKILL again and again in the middle of one large download, and
// after every kill the cache directory is opened in-process to check that
// every byte its index claims is on disk and correct.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/internal/testorigin"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

const (
	// crashSeed seeds the kill points; RESUMEPROXY_CRASH_SEED overrides it
	// to explore other schedules. Each subtest logs the seed it used.
	crashSeed = 20261103
	// crashKills is how many times each crash loop kills the proxy.
	crashKills = 20
	// crashWasteBar is issue 3's bound on what one kill may cost in upstream
	// bytes: the origin may send at most size + crashKills × crashWasteBar.
	crashWasteBar = 8 << 20
	// crashRoundTimeout bounds the wait for one round's kill point.
	crashRoundTimeout = 30 * time.Second
)

// TestCrashLoop kills resumeproxy with SIGKILL crashKills times during one
// download and checks after each kill that the index claims only correct
// bytes (DESIGN invariant 5), that the claims never shrink and that the
// client got a correct prefix; then that a last proxy completes the file,
// fetching only what was not claimed, that the origin sent at most
// crashWasteBar per kill beyond the size over the whole loop (issue 3's
// bar, an average: a kill mid-stream may cost more, see the round logs),
// and that the proxy exits 0 on SIGTERM.
//
// The kill points are byte offsets, not delays (see planKill): early, before
// a first checkpoint; mid-body while the fill streams; and just past a
// checkpoint boundary, when a background checkpoint is starting or running.
//
// Kill points are at most 17 MiB past the resume point, so the rounds
// together fetch a bounded part of the 256 MiB (about 130 MB) and the
// final download fetches the rest: both subtests together take about 15 s
// under -race on 2 cores, without shrinking the resource or the bar.
func TestCrashLoop(t *testing.T) {
	seed := uint64(crashSeed)
	if s := os.Getenv("RESUMEPROXY_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("RESUMEPROXY_CRASH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	// The default interval on the 256 MiB resource of issue 3.
	t.Run("4MiB-checkpoints", func(t *testing.T) {
		runCrashLoop(t, crashLoop{seed: seed, size: 256 << 20, interval: cache.DefaultCheckpointBytes})
	})
	// A small interval puts a checkpoint every few hundred KiB, so most
	// kills land while one is syncing or committing.
	t.Run("256KiB-checkpoints", func(t *testing.T) {
		runCrashLoop(t, crashLoop{seed: seed + 1, size: 64 << 20, interval: 256 << 10})
	})
}

// crashLoop is one crash-loop configuration.
type crashLoop struct {
	seed     uint64
	size     int64
	interval int64 // checkpoint_interval given to the child
}

func runCrashLoop(t *testing.T, c crashLoop) {
	const path = "/crash/loop.bin"
	t.Logf("seed %d (set RESUMEPROXY_CRASH_SEED to change it), size %d, checkpoint interval %d", c.seed, c.size, c.interval)
	rng := rand.New(rand.NewPCG(c.seed, c.seed^0x5eed))
	o := testorigin.New(t)
	o.Set(path, testorigin.Resource{Size: c.size, Validators: testorigin.StrongETag, CacheControl: cacheFor})
	u := o.URL + path
	// proxy/serve.go cacheKey: lower-case scheme and host, no fragment or
	// userinfo, default port dropped. o.URL is http://127.0.0.1:port, which
	// all of that leaves as it is.
	key := u
	cacheDir := t.TempDir()
	args := crashConfig(t, c.interval)
	wantETag := `"v0-` + strconv.FormatInt(c.size, 10) + `"`
	start := time.Now()

	var claimed rangeutil.Set
	for round := 1; round <= crashKills; round++ {
		resume := claimed.ContiguousEnd(0)
		plan := planKill(rng, round, resume, c.interval, c.size)
		rs := roundStart{bytes: o.PathBodyBytes(path), reqs: len(o.Requests(path))}

		if plan.stall {
			o.StallAt(path, plan.at) // taken by the round's one upstream response
		}
		p := startProxy(t, cacheDir, args...)
		d := startDownload(t, p, u, plan)
		why := waitKillPoint(t, o, path, rs, d, plan)
		if err := p.kill9(); err != nil && why == "" {
			why = err.Error()
		}
		d.wait(t)
		if why != "" {
			t.Fatalf("round %d (%v): %s\nresumeproxy stderr:\n%s", round, plan, why, p.log())
		}
		if log := p.log(); strings.Contains(log, "WARNING: DATA RACE") {
			t.Fatalf("round %d (%v): the race detector reported in the child:\n%s", round, plan, log)
		}

		now, id, err := checkClaims(cacheDir, key, c.size, wantETag)
		if err != nil {
			t.Fatalf("round %d (%v) after SIGKILL: %v\nresumeproxy stderr:\n%s", round, plan, err, p.log())
		}
		sent := o.PathBodyBytes(path) - rs.bytes
		// Claims never shrink: the origin never changes the resource, and
		// every claimed byte was synced before it was claimed, so the
		// next process has no reason to drop one. (A changed ETag, or a
		// block failing an integrity check, would be a legitimate reason;
		// neither can happen here, and the content check above would have
		// failed first for a bad block.)
		if lost := subtract(claimed, now); lost.Covered() > 0 {
			t.Fatalf("round %d (%v): claims shrank: %v were claimed after round %d, now %v (lost %v)\nresumeproxy stderr:\n%s",
				round, plan, claimed, round-1, now, lost, p.log())
		}
		// Bytes the origin never sent this round cannot be newly claimed.
		gain := now.Covered() - claimed.Covered()
		if gain > sent {
			t.Errorf("round %d (%v): claims grew by %d bytes but the origin sent only %d", round, plan, gain, sent)
		}
		// What the client got before the kill is a prefix of the content.
		if want := prefixSum(0, d.n.Load()); d.sum != want {
			t.Errorf("round %d (%v): the %d bytes the client read before the kill: sha256 %s, want %s", round, plan, d.n.Load(), d.sum, want)
		}
		files, length := bodyFiles(t, cacheDir, id)
		// Written but not claimed: a write that would take the writer
		// more than twice the interval ahead of the index waits for a
		// checkpoint first, so a kill loses at most that, or the write in
		// progress if it is larger (a fill writes at most 1 MiB at once).
		if unclaimed, most := length-now.ContiguousEnd(0), max(2*c.interval, 1<<20); unclaimed > most {
			t.Errorf("round %d (%v): %d bytes written beyond the claimed %d, want ≤ %d (2 × checkpoint interval, or one write)",
				round, plan, unclaimed, now.ContiguousEnd(0), most)
		}
		t.Logf("round %2d: %-32v client read %9d; origin sent %9d (total %9d); claimed %9d in %v (+%d, lost to the kill %d); body file length %d; %d body file(s)",
			round, plan, d.n.Load(), sent, o.BodyBytes(), now.Covered(), now, gain, sent-gain, length, files)
		claimed = now
	}

	finalDownload(t, o, path, u, cacheDir, c.size, claimed, args)
	// The fill's end and the shutdown checkpoint the whole body.
	now, id, err := checkClaims(cacheDir, key, c.size, wantETag)
	if err != nil {
		t.Errorf("after the final download and SIGTERM: %v", err)
	} else if now.Covered() != c.size {
		t.Errorf("after the final download and SIGTERM the index claims %v, want [0,%d)", now, c.size)
	}
	// Not an assertion: a version created by a proxy killed before its
	// first commit leaves a body file the index never names until the next
	// start, whose reconcile removes it (docs/ARCHITECTURE.md, startup).
	if files, _ := bodyFiles(t, cacheDir, id); files != 1 {
		t.Logf("NOTE: %d body files for one entry: %d orphaned by the kills", files, files-1)
	}
	total := o.BodyBytes()
	bar := c.size + crashKills*crashWasteBar
	t.Logf("after %d kills and a full download: origin sent %d body bytes for a %d-byte resource (%.2fx; bar %d), %v",
		crashKills, total, c.size, float64(total)/float64(c.size), bar, time.Since(start).Round(time.Millisecond))
	if total > bar {
		t.Errorf("origin sent %d body bytes over the whole loop, want at most %d (size + %d kills × %d)", total, bar, crashKills, crashWasteBar)
	}
}

// crashConfig writes a config file with the given checkpoint interval and
// returns the proxy arguments that use it.
func crashConfig(t *testing.T, interval int64) []string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "resumeproxy.yaml")
	// One connection per download: the loop follows one fill byte by byte
	// (TestCrashSegmented kills a download split over several).
	body := fmt.Sprintf("checkpoint_interval: %d\nlog_level: debug\nsegments:\n  per_download: 1\n", interval)
	if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"--config", f}
}

// killKind names where in a round the proxy is killed.
type killKind string

const (
	// killEarly: within the first MiB the round fetches, before any
	// checkpoint falls due; nothing new may be claimed.
	killEarly killKind = "early"
	// killMid: while the fill streams at full speed, checkpoints running
	// in the background.
	killMid killKind = "mid"
	// killBoundary: just past a checkpoint boundary, with the origin
	// stalled there, so the checkpoint of that boundary is due, running or
	// just committed.
	killBoundary killKind = "boundary"
)

// killPlan is where one round kills the proxy.
type killPlan struct {
	kind killKind
	// at is an absolute body offset. The kill happens once the trigger
	// has reached it.
	at int64
	// byClient: the trigger is the bytes the client has read (so the proxy
	// has written at least up to at); otherwise it is the offset up to
	// which the origin has sent (the proxy may still be reading them).
	byClient bool
	// stall makes the origin hang at at, so the fill cannot run past it.
	stall bool
}

func (p killPlan) String() string {
	by := "origin"
	if p.byClient {
		by = "client"
	}
	stall := ""
	if p.stall {
		stall = ",stall"
	}
	return fmt.Sprintf("%s@%d(%s%s)", p.kind, p.at, by, stall)
}

// planKill picks round's kill point past resume, the first byte the proxy
// will fetch. Rounds cycle early, mid, boundary; offsets are random. A kill
// point is never more than a quarter of what is missing past resume, so
// whatever the seed the resource is still incomplete when the final
// download starts, and every round has something to fetch.
func planKill(rng *rand.Rand, round int, resume, interval, size int64) killPlan {
	var p killPlan
	switch round % 3 {
	case 1:
		p = killPlan{kind: killEarly, at: 1 + rng.Int64N(1<<20-1), stall: true}
	case 2:
		p = killPlan{kind: killMid, at: 1<<20 + rng.Int64N(max(4*interval, 8<<20))}
	default:
		k := 1 + rng.Int64N(3)
		p = killPlan{kind: killBoundary, at: k*interval + rng.Int64N(min(interval/2, 512<<10)), stall: true, byClient: rng.IntN(2) == 0}
	}
	p.at = resume + max(1, min(p.at, (size-resume)/4))
	return p
}

// download is one client GET through the proxy whose result nobody needs:
// the proxy is killed under it.
type download struct {
	cancel  context.CancelFunc
	n       atomic.Int64  // body bytes read so far
	reached chan struct{} // closed when n reaches the plan's offset
	done    chan struct{} // closed when the client has given up
	err     error         // read after done
	status  int           // read after done
	sum     string        // hex sha256 of the bytes read; read after done
}

// startDownload GETs u through p in the background, reading the body into
// a sha256 (the request goes out as a plain GET from byte 0, like a fresh
// client's).
func startDownload(t *testing.T, p *proxyProc, u string, plan killPlan) *download {
	t.Helper()
	proxyURL, err := url.Parse(p.URL())
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{Proxy: http.ProxyURL(proxyURL), DisableCompression: true}
	ctx, cancel := context.WithTimeout(context.Background(), 2*crashRoundTimeout)
	d := &download{cancel: cancel, reached: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(d.done)
		defer tr.CloseIdleConnections()
		d.sum = prefixSum(0, 0)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			d.err = err
			return
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			d.err = err
			return
		}
		defer resp.Body.Close()
		d.status = resp.StatusCode
		h, buf := sha256.New(), make([]byte, 64<<10)
		defer func() { d.sum = hex.EncodeToString(h.Sum(nil)) }()
		for {
			n, err := resp.Body.Read(buf)
			h.Write(buf[:n])
			if d.n.Add(int64(n)) >= plan.at && plan.byClient {
				select {
				case <-d.reached:
				default:
					close(d.reached)
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					d.err = err
				}
				return
			}
		}
	}()
	return d
}

// wait waits for the client to notice that the proxy is gone.
func (d *download) wait(t *testing.T) {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		d.cancel()
		<-d.done
		t.Errorf("client still reading 10s after the proxy was killed")
	}
	d.cancel()
}

// waitKillPoint waits until plan's trigger has passed plan.at. It returns
// why not when the round cannot reach it (the client ended first, or the
// round timed out).
func waitKillPoint(t *testing.T, o *testorigin.Origin, path string, rs roundStart, d *download, plan killPlan) string {
	t.Helper()
	deadline := time.Now().Add(crashRoundTimeout)
	for {
		select {
		case <-d.reached:
			return ""
		case <-d.done:
			return fmt.Sprintf("client ended before the kill point: status %d after %d bytes, err %v", d.status, d.n.Load(), d.err)
		default:
		}
		if !plan.byClient {
			if pos, ok := originPos(o, path, rs); ok && pos >= plan.at {
				return ""
			}
		}
		if time.Now().After(deadline) {
			pos, _ := originPos(o, path, rs)
			return fmt.Sprintf("kill point not reached after %v: client read %d, origin at %d", crashRoundTimeout, d.n.Load(), pos)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// originPos returns the offset up to which the origin has sent this round's
// body: the start of the round's first request (its Range, or 0) plus the
// body bytes sent since the round began. A round has one upstream request:
// the proxy has one client and the origin never drops.
func originPos(o *testorigin.Origin, path string, rs roundStart) (int64, bool) {
	sent := o.PathBodyBytes(path) - rs.bytes // read first: the count only grows
	reqs := o.Requests(path)
	if len(reqs) <= rs.reqs {
		return 0, false
	}
	start := int64(0)
	if spec, ok := strings.CutPrefix(reqs[rs.reqs].Header.Get("Range"), "bytes="); ok {
		first, _, _ := strings.Cut(spec, "-")
		start, _ = strconv.ParseInt(first, 10, 64)
	}
	return start + sent, true
}

// roundStart is the origin's counts for the path when a round began.
type roundStart struct {
	bytes int64 // PathBodyBytes
	reqs  int   // len(Requests)
}

// kill9 kills the child with SIGKILL and waits for it; the cleanup's
// SIGTERM then does nothing. It fails if the child had already exited.
func (p *proxyProc) kill9() error {
	var err error
	p.stop.Do(func() {
		select {
		case <-p.done:
			err = fmt.Errorf("resumeproxy exited before SIGKILL: %v", p.waitErr)
			return
		default:
		}
		p.cmd.Process.Kill()
		<-p.done
	})
	return err
}

// checkClaims opens the cache in-process, as a restarted proxy would, and
// compares every byte the index claims for key with the origin's content.
// It returns the claimed set (empty when nothing is stored yet) and the ID
// of the stored version's body file.
func checkClaims(dir, key string, size int64, wantETag string) (claimed rangeutil.Set, id uint64, err error) {
	s, err := cache.Open(dir, cache.Options{})
	if err != nil {
		return claimed, 0, fmt.Errorf("cache.Open(%s): %w", dir, err)
	}
	defer func() {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the store: %w", cerr)
		}
	}()
	e, err := s.Get(key)
	if err != nil || e == nil {
		return claimed, 0, err
	}
	defer e.Release()
	m := e.Meta()
	if m.Size != size || m.Status != http.StatusOK || http.Header(m.Header).Get("ETag") != wantETag {
		return m.Ranges, m.ID, fmt.Errorf("stored entry: size %d, status %d, ETag %q; want %d, 200, %s", m.Size, m.Status, http.Header(m.Header).Get("ETag"), size, wantETag)
	}
	for _, r := range m.Ranges.Ranges() {
		if r.Start < 0 || r.End > size {
			return m.Ranges, m.ID, fmt.Errorf("index claims [%d, %d), beyond the body [0, %d)", r.Start, r.End, size)
		}
		if err := compareRange(e, r); err != nil {
			return m.Ranges, m.ID, fmt.Errorf("index claims %v: %w", m.Ranges, err)
		}
	}
	return m.Ranges, m.ID, nil
}

// compareRange compares the body file's bytes in r with version 0 of the
// origin's content, 1 MiB at a time, and reports the first wrong offset.
func compareRange(e *cache.Entry, r rangeutil.Range) error {
	const chunk = 1 << 20
	got, want := make([]byte, chunk), make([]byte, chunk)
	for off := r.Start; off < r.End; off += chunk {
		n := min(chunk, r.End-off)
		if _, err := e.ReadAt(got[:n], off); err != nil {
			return fmt.Errorf("claimed bytes [%d, %d) unreadable: %w", off, off+n, err)
		}
		if _, err := io.ReadFull(testorigin.NewReader(0, off, n), want[:n]); err != nil {
			return err
		}
		if !bytes.Equal(got[:n], want[:n]) {
			return mismatch(got[:n], want[:n], off)
		}
	}
	return nil
}

// mismatch describes how got differs from want, both starting at off.
func mismatch(got, want []byte, off int64) error {
	first, bad, zeros := -1, 0, 0
	for i := range got {
		if got[i] != want[i] {
			if first < 0 {
				first = i
			}
			bad++
			if got[i] == 0 {
				zeros++
			}
		}
	}
	return fmt.Errorf("claimed byte %d = %#02x, want %#02x (%d of the %d bytes at [%d, %d) differ, %d of them zero: never written?)",
		off+int64(first), got[first], want[first], bad, len(got), off, off+int64(len(got)), zeros)
}

// bodyFiles returns how many body files the cache directory holds and the
// length of version id's (named data/xx/<id in hex>, docs/ARCHITECTURE.md),
// or -1 if there is none. WriteAt extends the file, so after a SIGKILL its
// length is the end of the furthest byte any proxy wrote to it: beyond the
// claims, that is what the kills cost in written but unclaimed bytes.
func bodyFiles(t *testing.T, dir string, id uint64) (n int, length int64) {
	t.Helper()
	length = -1
	name := fmt.Sprintf("%016x", id)
	err := filepath.WalkDir(filepath.Join(dir, "data"), func(_ string, de os.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		n++
		if de.Name() != name {
			return nil
		}
		fi, err := de.Info()
		if err == nil {
			length = fi.Size()
		}
		return err
	})
	if err != nil {
		t.Errorf("listing body files: %v", err)
	}
	return n, length
}

// subtract returns the bytes of a that are not in b.
func subtract(a, b rangeutil.Set) rangeutil.Set {
	out := a.Clone()
	for _, r := range b.Ranges() {
		out.Remove(r)
	}
	return out
}

// finalDownload starts one last proxy on the cache directory, downloads
// the whole resource through it and checks it, then stops the proxy with
// SIGTERM and requires exit status 0.
func finalDownload(t *testing.T, o *testorigin.Origin, path, u, cacheDir string, size int64, claimed rangeutil.Set, args []string) {
	t.Helper()
	before := o.PathBodyBytes(path)
	p := startProxy(t, cacheDir, args...)
	proxyURL, _ := url.Parse(p.URL())
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), DisableCompression: true}, Timeout: 2 * crashRoundTimeout}
	defer c.CloseIdleConnections()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("final download: %v\nresumeproxy stderr:\n%s", err, p.log())
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	c.CloseIdleConnections()
	got := hex.EncodeToString(h.Sum(nil))
	if err != nil || resp.StatusCode != http.StatusOK || n != size {
		t.Errorf("final download: status %d, %d bytes, err %v; want 200, %d bytes", resp.StatusCode, n, err, size)
	}
	if want := testorigin.Sum(0, size); got != want {
		t.Errorf("final download: sha256 %s, want %s", got, want)
	}
	sent := o.PathBodyBytes(path) - before
	t.Logf("final download: status %d, X-Cache %s, %d bytes, origin sent %d for it", resp.StatusCode, resp.Header.Get("X-Cache"), n, sent)
	if xc := resp.Header.Get("X-Cache"); claimed.Covered() > 0 && xc != "PARTIAL" {
		t.Errorf("final download: X-Cache %q, want PARTIAL (%v was kept)", xc, claimed)
	}
	if want := size - claimed.Covered(); sent != want {
		t.Errorf("final download: origin sent %d body bytes, want %d (only what was not claimed)", sent, want)
	}
	p.signalAndWait(t, syscall.SIGTERM)
}

// TestCrashSegmented kills resumeproxy with SIGKILL while a download split
// into segments streams over several connections (issue 12), then checks
// that the index claims only correct bytes, however scattered, and that a
// restarted proxy completes the file fetching only what was not claimed.
func TestCrashSegmented(t *testing.T) {
	const path, size = "/crash/segmented.bin", 64 << 20
	o := testorigin.New(t)
	o.Set(path, testorigin.Resource{Size: size, Validators: testorigin.StrongETag, CacheControl: cacheFor, Rate: 48 << 20})
	u := o.URL + path
	cacheDir := t.TempDir()
	p := startProxy(t, cacheDir)
	proxyURL, _ := url.Parse(p.URL())
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), DisableCompression: true}, Timeout: crashRoundTimeout}
	defer c.CloseIdleConnections()
	done := make(chan error, 1)
	go func() {
		resp, err := c.Get(u)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	deadline := time.Now().Add(crashRoundTimeout)
	for o.PathBodyBytes(path) < 24<<20 || o.MaxConcurrent(path) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("origin sent %d bytes on at most %d connections at once after %v; want 24 MiB over several\n%s",
				o.PathBodyBytes(path), o.MaxConcurrent(path), crashRoundTimeout, p.log())
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.kill9(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Error("the client got a clean body from a proxy killed mid-download")
	}
	claimed, _, err := checkClaims(cacheDir, u, size, `"v0-`+strconv.FormatInt(size, 10)+`"`)
	if err != nil {
		t.Fatalf("after the kill: %v\n%s", err, p.log())
	}
	t.Logf("killed with the origin at %d bytes on up to %d connections; claimed %v", o.PathBodyBytes(path), o.MaxConcurrent(path), claimed)
	finalDownload(t, o, path, u, cacheDir, size, claimed, nil)
}
