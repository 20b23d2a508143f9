package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

// TestFreshness: fresh entries are hits; stale ones are revalidated and a
// 304 keeps the body; a changed resource replaces it.
func TestFreshness(t *testing.T) {
	h := newHarness(t)
	const size = mib
	u := h.set("/f", testorigin.Resource{Size: size, CacheControl: "max-age=0"})
	h.get(u)
	h.origin.ResetCounts()
	r := h.get(u)
	wantBody(t, "revalidated", r, 200, 0, 0, size)
	wantXCache(t, "revalidated", r, xHit)
	reqs := h.origin.Requests("/f")
	if len(reqs) != 1 || reqs[0].Header.Get("If-None-Match") != `"v0-1048576"` || h.origin.BodyBytes() != 0 {
		t.Errorf("revalidation: %d requests, body bytes %d, want one conditional request and no body", len(reqs), h.origin.BodyBytes())
	}
	h.origin.SetVersion("/f", 1)
	wantBody(t, "changed", h.get(u), 200, 1, 0, size)
	wantBody(t, "changed again", h.get(u), 200, 1, 0, size)
}

// TestHeuristicFreshness: Last-Modified alone makes a response fresh for a
// tenth of its age (RFC 9111 §4.2.2): a hit without any upstream request.
func TestHeuristicFreshness(t *testing.T) {
	h := newHarness(t)
	u := h.set("/f", testorigin.Resource{Size: 1000, Validators: testorigin.LastModifiedOnly})
	h.get(u)
	h.origin.ResetCounts()
	wantXCache(t, "second", h.get(u), xHit)
	if n := len(h.origin.Requests("/f")); n != 0 {
		t.Errorf("origin saw %d requests, want 0", n)
	}
}

// TestPrivacy: what must not be shared is not stored (DESIGN invariant 6).
func TestPrivacy(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		cookie := http.Header{"Set-Cookie": {"session=secret"}}
		for _, c := range []struct {
			name   string
			res    testorigin.Resource
			hdr    []string
			stored bool
		}{
			{"no-store", testorigin.Resource{Size: 1000, CacheControl: "no-store"}, nil, false},
			{"private", testorigin.Resource{Size: 1000, CacheControl: "private, max-age=60"}, nil, false},
			{"authorization", testorigin.Resource{Size: 1000, CacheControl: "max-age=60"}, []string{"Authorization: Bearer x"}, false},
			{"authorization-public", testorigin.Resource{Size: 1000, CacheControl: "public, max-age=60"}, []string{"Authorization: Bearer x"}, true},
			{"request-no-store", testorigin.Resource{Size: 1000, CacheControl: "max-age=60"}, []string{"Cache-Control: no-store"}, false},
			{"set-cookie", testorigin.Resource{Size: 1000, CacheControl: "max-age=60", Header: cookie}, nil, true},
		} {
			t.Run(c.name, func(t *testing.T) {
				h := newSchemeHarness(t, s)
				u := h.set("/f", c.res)
				first := h.get(u, c.hdr...)
				wantBody(t, "first", first, 200, 0, 0, 1000)
				second := h.get(u, c.hdr...)
				wantBody(t, "second", second, 200, 0, 0, 1000)
				if got := len(h.origin.Requests("/f")) == 1; got != c.stored {
					t.Errorf("stored = %v, want %v", got, c.stored)
				}
				if c.res.Header != nil && second.header.Get("Set-Cookie") != "" {
					t.Errorf("a hit carried Set-Cookie %q", second.header.Get("Set-Cookie"))
				}
				if c.res.Header != nil && first.header.Get("Set-Cookie") == "" {
					t.Errorf("the miss lost its own Set-Cookie")
				}
			})
		}
	})
}

// TestVary: Vary selects the variant; a request with other values never
// gets the stored one.
func TestVary(t *testing.T) {
	h := newHarness(t)
	u := h.set("/f", testorigin.Resource{Size: 1000, CacheControl: "max-age=60", Header: http.Header{"Vary": {"Accept-Language"}}})
	h.get(u, "Accept-Language: fr")
	wantXCache(t, "same", h.get(u, "Accept-Language: fr"), xHit)
	wantXCache(t, "other", h.get(u, "Accept-Language: de"), xMiss)
	if got := h.origin.Requests("/f")[1].Header.Get("Accept-Language"); got != "de" {
		t.Errorf("origin got Accept-Language %q, want de", got)
	}
	u = h.set("/star", testorigin.Resource{Size: 10, CacheControl: "max-age=60", Header: http.Header{"Vary": {"*"}}})
	h.get(u)
	wantXCache(t, "vary star", h.get(u), xMiss)
}

// TestHopByHop: connection-specific fields do not cross the proxy, Via is
// added both ways, Accept-Encoding reaches the origin.
func TestHopByHop(t *testing.T) {
	h := newHarness(t)
	u := h.set("/f", testorigin.Resource{Size: 10, CacheControl: "max-age=60"})
	r := h.get(u, "Connection: X-Secret", "X-Secret: 1", "Keep-Alive: 300", "TE: trailers", "Accept-Encoding: gzip", "X-End-To-End: yes")
	wantBody(t, "get", r, 200, 0, 0, 10)
	got := h.origin.Requests("/f")[0].Header
	for _, name := range []string{"X-Secret", "Keep-Alive", "Te"} {
		if got.Get(name) != "" {
			t.Errorf("origin received hop-by-hop %s: %q", name, got.Get(name))
		}
	}
	if got.Get("X-End-To-End") != "yes" || got.Get("Accept-Encoding") != "gzip" || !strings.Contains(got.Get("Via"), "resumeproxy") {
		t.Errorf("origin header = %v, want X-End-To-End, Accept-Encoding and Via", got)
	}
}

// TestPassThrough: other methods go upstream unchanged and are not cached.
func TestPassThrough(t *testing.T) {
	h := newHarness(t)
	u := h.set("/f", testorigin.Resource{Size: 10, CacheControl: "max-age=60"})
	req, _ := http.NewRequest(http.MethodHead, u, nil)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Cache") != xMiss || resp.ContentLength != 10 {
		t.Errorf("HEAD: %d X-Cache %q length %d", resp.StatusCode, resp.Header.Get("X-Cache"), resp.ContentLength)
	}
	if n := len(h.origin.Requests("/f")); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
}

// TestBadRequests: hostile input gets a clear 4xx and the proxy stays up.
func TestBadRequests(t *testing.T) {
	h := newHarness(t)
	u := h.set("/f", testorigin.Resource{Size: 100, CacheControl: "max-age=60"})
	for _, c := range []struct {
		name, raw string
		status    int
	}{
		{"ftp scheme", "GET ftp://127.0.0.1/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400},
		{"origin-form", "GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400},
		{"huge header", "GET " + u + " HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + strings.Repeat("a", 100<<10) + "\r\n\r\n", 431},
		{"garbage", "\x16\x03\x01 not http\r\n\r\n", 400},
	} {
		if got := rawStatus(t, h.ln.Addr().String(), c.raw); got != c.status {
			t.Errorf("%s: status %d, want %d", c.name, got, c.status)
		}
	}
	wantBody(t, "after bad input", h.get(u), 200, 0, 0, 100)
}

// TestUpstreamDown: an unreachable origin is a 502 that names it, also
// inside an intercepted tunnel (goproxy's own MITM loop would send an
// empty reply).
func TestUpstreamDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	schemes(t, func(t *testing.T, s scheme) {
		u := "http://" + addr + "/f"
		var h *harness
		if s == intercepted {
			h = newTLSHarnessWith(t, func(h *harness) { h.names["down.test"] = addr })
			u = "https://down.test/f"
		} else {
			h = newHarness(t)
		}
		r := h.get(u)
		if r.status != http.StatusBadGateway {
			t.Fatalf("status %d, want 502", r.status)
		}
		if body := string(h.getBody(u)); !strings.Contains(body, "connection refused") || !strings.Contains(body, strings.TrimPrefix(strings.Split(u, "/")[2], "")) {
			t.Errorf("502 body %q, want the host and the reason", body)
		}
	})
}

// rawStatus sends raw bytes to addr and returns the response status.
func rawStatus(t *testing.T, addr, raw string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go io.WriteString(c, raw)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response to %q: %v", raw[:min(len(raw), 40)], err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
