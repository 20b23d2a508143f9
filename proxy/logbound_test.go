package proxy

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

// longInput is 66 KB of client-chosen text: a URL this long still fits in
// the server's header limit (64 KiB plus net/http's 4 KiB of slack).
var longInput = strings.Repeat("a", 66_000)

// maxLogLine bounds a log line: a handful of clipped attributes and the
// fixed text around them.
const maxLogLine = 4 << 10

// TestLogLinesBounded: requests carrying 66 KB in their URL, Host or Via
// make the proxy log (a failed download, a failed pass-through, a refused
// CONNECT, a loop, a misdirected request), and every line stays under
// maxLogLine. (Before: each of these lines carried the whole 66 KB.)
func TestLogLinesBounded(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		var h *harness
		debug := func(h *harness) {
			h.opts.Logger = slog.New(slog.NewTextHandler(tWriter{t, h.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		if s == intercepted {
			h = newTLSHarnessWith(t, debug)
		} else {
			h = newHarnessUnstarted(t, testorigin.New(t))
			debug(h)
			h.start()
		}
		const size = 4 * mib
		u := h.set("/long", testorigin.Resource{Size: size, Validators: testorigin.StrongETag, CacheControl: "max-age=60"})
		h.exhaustRetriesAt("/long", mib)
		if r := h.get(u + "?q=" + longInput); r.err == nil {
			t.Errorf("GET with a 66 KB URL whose upstream fails: %d bytes, no error; want the client cut", r.n)
		}
		status(t, h.client, http.MethodGet, u, "Via: 1.1 resumeproxy, 1.1 "+longInput)
		if s == plainHTTP {
			status(t, h.client, http.MethodPost, "http://"+closedAddr(t)+"/?q="+longInput)
			connectLong(t, h, longInput+":1")
		} else {
			misdirected(t, h, longInput)
		}
		checkLogLines(t, h)
	})
}

// connectLong sends a CONNECT to target without a Host field (net/http
// does not require one for CONNECT), so that target may take the whole
// header limit; the proxy refuses it.
func connectLong(t *testing.T, h *harness, target string) {
	c, err := net.Dial("tcp", h.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\n\r\n", target)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT to a 66 KB host: %v", err)
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("CONNECT to a 66 KB host on port 1: %d, want 403", resp.StatusCode)
	}
}

// misdirected sends a request for another host inside a tunnel to
// origin.test (421, logged).
func misdirected(t *testing.T, h *harness, host string) {
	tc, err := h.tlsTunnel("origin.test:443", h.clientTLS.Clone())
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer tc.Close()
	fmt.Fprintf(tc, "GET /f HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatalf("request for another host in a tunnel: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("request for another host in a tunnel: %d, want 421", resp.StatusCode)
	}
}

// checkLogLines fails for every logged line longer than maxLogLine, and
// when none was cut (the test would then prove nothing).
func checkLogLines(t *testing.T, h *harness) {
	t.Helper()
	h.logs.mu.Lock()
	defer h.logs.mu.Unlock()
	clipped := 0
	for _, l := range h.logs.lines {
		if len(l) > maxLogLine {
			t.Errorf("a log line of %d bytes, want at most %d: %.200s…", len(l), maxLogLine, l)
		}
		if strings.Contains(l, "more bytes]") {
			clipped++
		}
	}
	if clipped < 3 {
		t.Errorf("%d log lines with a clipped value, want at least 3", clipped)
	}
}

// closedAddr is a 127.0.0.1 address on which nothing listens.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestClip(t *testing.T) {
	long := strings.Repeat("x", maxLogValue)
	tests := []struct{ in, want string }{
		{"", ""},
		{"http://example.com/f", "http://example.com/f"},
		{long, long},
		{long + "y", long + "…[1 more bytes]"},
		{long[:maxLogValue-1] + "é" + "z", long[:maxLogValue-1] + "…[3 more bytes]"}, // never half a character
	}
	for _, tt := range tests {
		if got := clip(tt.in); got != tt.want {
			t.Errorf("clip(%d bytes ending %q) = …%q, want …%q", len(tt.in), tt.in[max(0, len(tt.in)-8):], got[max(0, len(got)-20):], tt.want[max(0, len(tt.want)-20):])
		}
	}
	if got := clipErr(nil); got != "" {
		t.Errorf("clipErr(nil) = %q, want \"\"", got)
	}
}
