package proxy

// Regression tests for the upstream flow (issue 9): relays tied to their
// client, retry decisions by where a failure happened, flushing, and fills
// bounded by what their readers take.

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

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

// TestRelayEndsWithClient: a relayed (not stored) body's upstream request
// ended only at the upstream idle timeout, or never for an upstream that
// kept sending slowly, after its client had gone: relays outlived their
// clients by minutes. Now the client's departure cancels it at once. The
// pass-through (a request that bypasses the cache) is checked alike.
func TestRelayEndsWithClient(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		for _, c := range []struct {
			name         string
			cacheControl string // of the response
			hdr          []string
		}{
			{"no-store response", "no-store", nil},
			{"no-store request", "max-age=60", []string{"Cache-Control: no-store"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				h := newSchemeHarness(t, s) // upstream idle timeout: 1 minute
				const size = 8 * mib
				u := h.set("/f", testorigin.Resource{Size: size, CacheControl: c.cacheControl})
				stalled := h.origin.StallAt("/f", 2*mib)
				resp := h.openBody(u, c.hdr...)
				// Close to the stall, so that the proxy has nothing left to
				// write and only the client's departure can end the relay.
				if n, err := io.CopyN(io.Discard, resp.Body, 2*mib-64<<10); err != nil {
					t.Fatalf("client read %d bytes: %v", n, err)
				}
				resp.Body.Close()
				left := time.Now()
				select {
				case <-stalled:
					t.Logf("origin's response ended %v after the client left", time.Since(left).Round(time.Millisecond))
				case <-time.After(5 * time.Second):
					t.Fatalf("origin's response still open 5s after its only client left")
				}
			})
		}
	})
}
