package proxy

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/internal/testorigin"
	"github.com/resumeproxy/resumeproxy/proxy/policy"
)

// TestHugeDeclaredSizeRelayed: a cacheable response declaring 2^62 bytes
// (Content-Length, or a 206's Content-Range total) made the cache's
// bookkeeping allocate in proportion (fatal error: out of memory: every
// download cut); near 2^63 its block count overflowed. Now a size over
// max_object_size is relayed uncached: the client gets the bytes it reads,
// the origin stops sending when the client leaves, and the proxy serves
// the next download as usual.
func TestHugeDeclaredSizeRelayed(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		h := newSchemeHarness(t, s)
		for _, size := range []int64{1 << 55, 1 << 62, math.MaxInt64} {
			path := fmt.Sprintf("/huge/%d", size)
			u := h.set(path, testorigin.Resource{Size: size, CacheControl: "max-age=3600"})
			for _, c := range []struct {
				hdr    []string
				status int
			}{
				{nil, http.StatusOK},
				{[]string{"Range: bytes=0-1048575"}, http.StatusPartialContent},
			} {
				const read = 3 * mib
				h.origin.ResetCounts()
				r := h.getN(u, read, c.hdr...)
				want := min(int64(read), mib)
				if c.status == http.StatusOK {
					want = read
				}
				if r.status != c.status || r.n != want || r.sum != sumOf(0, 0, want) {
					t.Fatalf("GET %s %v: status %d, %d bytes (sha256 %s), want %d, the first %d bytes (sha256 %s)",
						path, c.hdr, r.status, r.n, r.sum[:12], c.status, want, sumOf(0, 0, want)[:12])
				}
				wantXCache(t, "GET "+path, r, xMiss)
				if sent := h.origin.PathBodyBytes(path); sent > read+16*mib {
					t.Errorf("GET %s %v: the origin sent %d bytes for a client that read %d, want at most 16 MiB more", path, c.hdr, sent, r.n)
				}
				if e := h.stored(u); e != nil {
					e.Release()
					t.Errorf("after GET %s: an entry of declared size %d is stored, want none", path, size)
				}
			}
		}
		u := h.set("/normal", testorigin.Resource{Size: 5 * mib, CacheControl: "max-age=3600"})
		for _, want := range []string{xMiss, xHit} {
			r := h.get(u)
			wantBody(t, "GET /normal after the huge ones", r, http.StatusOK, 0, 0, 5*mib)
			wantXCache(t, "GET /normal", r, want)
		}
	})
}

// stored returns the entry stored for URL u, or nil; the caller releases it.
func (h *harness) stored(u string) *cache.Entry {
	h.t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		h.t.Fatalf("url.Parse(%q): %v", u, err)
	}
	e, err := h.store.Get(policy.CacheKey(pu))
	if err != nil {
		h.t.Fatalf("store.Get(%s): %v", u, err)
	}
	return e
}

// TestCutBodyFileRefetched: a body file cut short while the proxy runs was
// served as a cut HIT at every request, silently. Now the first short read
// drops the lost bytes (one log line) and the response goes on with them
// fetched again: the client gets the whole body, the origin sends only
// what the file lost, and the next request is a whole HIT.
func TestCutBodyFileRefetched(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		h := newSchemeHarness(t, s)
		const size, cut = 8 * mib, 3*mib + 12345
		u := h.set("/cut.bin", testorigin.Resource{Size: size, CacheControl: "max-age=3600"})
		for _, want := range []string{xMiss, xHit} {
			r := h.get(u)
			wantBody(t, "GET before the cut", r, http.StatusOK, 0, 0, size)
			wantXCache(t, "GET before the cut", r, want)
		}
		e := h.stored(u)
		f, err := e.OpenReader()
		if err != nil {
			t.Fatal(err)
		}
		path := f.Name()
		f.Close()
		e.Release()
		if err := os.Truncate(path, cut); err != nil {
			t.Fatal(err)
		}

		h.origin.ResetCounts()
		wantBody(t, "GET after the cut", h.get(u), http.StatusOK, 0, 0, size)
		if got := h.origin.PathBodyBytes("/cut.bin"); got != size-cut {
			t.Errorf("after the cut the origin sent %d bytes, want %d (what the file lost)", got, size-cut)
		}
		r := h.get(u)
		wantBody(t, "GET after the refill", r, http.StatusOK, 0, 0, size)
		wantXCache(t, "GET after the refill", r, xHit)
		if got := h.origin.PathBodyBytes("/cut.bin"); got != size-cut {
			t.Errorf("after the refill the origin sent %d bytes in all, want %d (nothing more)", got, size-cut)
		}
		if got := h.logs.count("body file cut short"); got != 1 {
			t.Errorf("the cut was logged %d times, want once", got)
		}
	})
}

// TestLongURLCached: a 66 KB URL was over Badger's key limit: it was never
// stored, and every request logged a 140 KB error line (the URL, and a hex
// dump of it). Now a key over the index's limit is stored under its hash,
// with the URL in its record, so the URL is cached and hit like any
// other, and no log line carries it whole.
func TestLongURLCached(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		h := newSchemeHarness(t, s)
		path := "/long/" + strings.Repeat("a", 66_000)
		u := h.set(path, testorigin.Resource{Size: 2 * mib, CacheControl: "max-age=3600"})
		for _, want := range []string{xMiss, xHit} {
			r := h.get(u)
			wantBody(t, "GET a 66 KB URL", r, http.StatusOK, 0, 0, 2*mib)
			wantXCache(t, "GET a 66 KB URL", r, want)
		}
		if got := h.origin.PathBodyBytes(path); got != 2*mib {
			t.Errorf("the origin sent %d bytes for two GETs of a 66 KB URL, want %d (one download)", got, 2*mib)
		}
		// A URL that differs in its last byte is another resource.
		other := path[:len(path)-1] + "b"
		v := h.set(other, testorigin.Resource{Size: mib, Version: 1, CacheControl: "max-age=3600"})
		r := h.get(v)
		wantBody(t, "GET the other 66 KB URL", r, http.StatusOK, 1, 0, mib)
		wantXCache(t, "GET the other 66 KB URL", r, xMiss)
		if longest := h.logs.longest(); longest > 8<<10 {
			t.Errorf("the longest log line is %d bytes, want at most 8 KiB", longest)
		}
	})
}

// longest returns the length of the longest line logged.
func (b *logBuffer) longest() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, l := range b.lines {
		n = max(n, len(l))
	}
	return n
}

// TestHugeHeaderRelayed: a response with a 1 MiB header was stored, and
// its record, headers included, rewritten into the index at every
// checkpoint (9 MB of headers took the index to 515 MB for one 200 MB
// body). Now headers over cache.MaxHeaderBytes are relayed uncached, and
// the log says why.
func TestHugeHeaderRelayed(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		h := newSchemeHarness(t, s)
		big := strings.Repeat("x", 1<<20)
		u := h.set("/big-header", testorigin.Resource{Size: 4 * mib, CacheControl: "max-age=3600",
			Header: http.Header{"X-Big": {big}}})
		for i := range 2 {
			r := h.get(u)
			wantBody(t, "GET with a 1 MiB header", r, http.StatusOK, 0, 0, 4*mib)
			wantXCache(t, "GET with a 1 MiB header", r, xMiss)
			if got := r.header.Get("X-Big"); got != big {
				t.Errorf("GET %d: X-Big of %d bytes, want the origin's %d", i+1, len(got), len(big))
			}
		}
		if got := h.origin.PathBodyBytes("/big-header"); got != 8*mib {
			t.Errorf("the origin sent %d bytes for two GETs, want %d (each relayed)", got, 8*mib)
		}
		if e := h.stored(u); e != nil {
			e.Release()
			t.Errorf("a response with a 1 MiB header is stored, want it relayed")
		}
		if got := h.logs.count("too large to store"); got != 2 {
			t.Errorf("logged %d times why the response was not stored, want 2", got)
		}
	})
}
