package proxy

import (
	"sync"
	"testing"

	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

// TestConcurrentColdClients is issue 3's bar: 16 clients ask at once for
// one cold 256 MiB file; each gets it exactly and the origin sends it about
// once.
func TestConcurrentColdClients(t *testing.T) {
	size := int64(256 * mib)
	if testing.Short() {
		size = 16 * mib
	}
	h := newHarness(t)
	u := h.set("/big", testorigin.Resource{Size: size})
	results := make([]result, 16)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = h.get(u) })
	}
	wg.Wait()
	for i, r := range results {
		wantBody(t, "client "+itoa(int64(i)), r, 200, 0, 0, size)
	}
	if sent, max := h.origin.BodyBytes(), size*105/100; sent > max {
		t.Errorf("origin sent %d body bytes for 16 clients, want ≤ %d", sent, max)
	}
}

// TestConcurrentRangeClients: clients asking for different ranges of one
// cold file at once share the fetches and all get exact bytes.
func TestConcurrentRangeClients(t *testing.T) {
	const size = 8 * mib
	h := newHarness(t)
	u := h.set("/f", testorigin.Resource{Size: size})
	ranges := [][2]int64{{0, size}, {mib, 3 * mib}, {2 * mib, size}, {0, mib}, {5 * mib, 6 * mib}, {0, size}}
	results := make([]result, len(ranges))
	var wg sync.WaitGroup
	for i, rg := range ranges {
		wg.Go(func() {
			if rg == [2]int64{0, size} {
				results[i] = h.get(u)
				return
			}
			results[i] = h.get(u, "Range: bytes="+itoa(rg[0])+"-"+itoa(rg[1]-1))
		})
	}
	wg.Wait()
	for i, rg := range ranges {
		status := 206
		if rg == [2]int64{0, size} {
			status = 200
		}
		wantBody(t, "client "+itoa(int64(i)), results[i], status, 0, rg[0], rg[1]-rg[0])
	}
	// The union of what was asked is the whole file; allow one more copy of
	// what clients raced for before the first entry existed.
	if sent := h.origin.BodyBytes(); sent > 2*size {
		t.Errorf("origin sent %d body bytes, want ≤ %d", sent, 2*size)
	}
}

// TestConcurrentWeakETagClients: a second client of a resource that cannot
// be resumed joins the download in progress instead of dropping it (which
// used to cut the first client).
func TestConcurrentWeakETagClients(t *testing.T) {
	const size = 16 * mib
	h := newHarness(t)
	u := h.set("/f", testorigin.Resource{Size: size, Validators: testorigin.WeakETag, CacheControl: "max-age=60"})
	results := make([]result, 4)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = h.get(u) })
	}
	wg.Wait()
	for i, r := range results {
		wantBody(t, "client "+itoa(int64(i)), r, 200, 0, 0, size)
	}
}
