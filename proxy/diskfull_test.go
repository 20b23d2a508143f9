package proxy

import (
	"testing"

	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

// TestDiskFullFromTheStart: with a full disk, downloads go on uncached and
// exact; the failure is logged once, not per write or per request.
func TestDiskFullFromTheStart(t *testing.T) {
	h := newHarness(t)
	const size = 6 * mib
	u := h.set("/f", testorigin.Resource{Size: size})
	h.spaceLeft.Store(0)
	results := h.getAll(3, u, func(int) []string { return nil })
	for i, r := range results {
		wantBody(t, "client "+itoa(int64(i)), r, 200, 0, 0, size)
	}
	wantBody(t, "later", h.get(u), 200, 0, 0, size)
	if n := h.logs.count("storage failing"); n != 1 {
		t.Errorf("storage failure logged %d times, want once", n)
	}
}

// TestDiskFillsMidDownload: the disk fills while a download streams; the
// client still gets the whole file, the index claims only bytes that were
// synced before, and once there is room again the next request resumes
// from them.
func TestDiskFillsMidDownload(t *testing.T) {
	h := newHarness(t)
	const size = 16 * mib
	u := h.set("/f", testorigin.Resource{Size: size})
	h.spaceLeft.Store(5*mib + 100)
	wantBody(t, "while the disk fills", h.get(u), 200, 0, 0, size)

	if n := h.logs.count("no space left"); n != 1 {
		t.Errorf("ENOSPC logged %d times, want once", n)
	}

	h.restart() // the index keeps what the last good checkpoint claimed
	h.spaceLeft.Store(-1)
	h.origin.ResetCounts()
	r := h.get(u)
	wantBody(t, "after", r, 200, 0, 0, size)
	// How much was kept depends on which background checkpoints synced
	// before the disk filled (a sync on a full disk fails, so later ones
	// commit nothing). What holds: kept bytes were right, and none is
	// fetched twice.
	sent := h.origin.BodyBytes()
	if xc := r.header.Get("X-Cache"); sent > size || (xc == xPartial) != (sent < size) {
		t.Errorf("origin sent %d body bytes once there was room (X-Cache %s), want < %d exactly when PARTIAL", sent, xc, int64(size))
	}
}
