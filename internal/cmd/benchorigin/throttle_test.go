package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1048576", 1 << 20, true},
		{"256KiB", 256 << 10, true},
		{"256K", 256 << 10, true},
		{"32MiB", 32 << 20, true},
		{"32mib", 32 << 20, true},
		{"100M", 100 << 20, true},
		{"1GiB", 1 << 30, true},
		{"1G", 1 << 30, true},
		{"", 0, false},
		{"-1", 0, false},
		{"MiB", 0, false},
		{"3TiB", 0, false},
		{"1.5M", 0, false},
	} {
		got, err := parseByteSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// writeThrottled writes n bytes through a throttledWriter of ls in 32 KiB
// pieces (as io.Copy does) and returns how long it took on the bubble's
// clock.
func writeThrottled(t *testing.T, n int, burst int, ls ...*rate.Limiter) time.Duration {
	t.Helper()
	var s stats
	w := throttledWriter{ResponseWriter: httptest.NewRecorder(), ctx: context.Background(), limiters: ls, burst: burst, n: &s.bodyBytes}
	start := time.Now()
	buf := make([]byte, 32<<10)
	for sent := 0; sent < n; sent += len(buf) {
		if _, err := w.Write(buf[:min(len(buf), n-sent)]); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if got := s.bodyBytes.Load(); got != int64(n) {
		t.Errorf("counted %d body bytes, want %d", got, n)
	}
	return time.Since(start)
}

// TestThrottleRates checks the rates on a fake clock: a connection's
// bucket holds it to its rate after the first burst, and two connections
// behind one link share it.
func TestThrottleRates(t *testing.T) {
	const bps, burst, size = 4 << 20, 256 << 10, 4 << 20
	synctest.Test(t, func(t *testing.T) {
		th, err := newThrottle(bps, bps, burst)
		if err != nil {
			t.Fatal(err)
		}
		conn := th.connContext(context.Background(), nil).Value(connLimiterKey{}).(*rate.Limiter)
		want := time.Duration(float64(size-burst) / bps * float64(time.Second))
		if got := writeThrottled(t, size, burst, conn); got != want {
			t.Errorf("one connection at %d B/s: %d bytes in %v, want %v", bps, size, got, want)
		}
		// The link's bucket is full: the first burst is free, then the two
		// writers share the rate.
		var wg sync.WaitGroup
		start := time.Now()
		for range 2 {
			wg.Go(func() { writeThrottled(t, size, burst, th.link) })
		}
		wg.Wait()
		want = time.Duration(float64(2*size-burst) / bps * float64(time.Second))
		if got := time.Since(start); got < want-time.Millisecond || got > want+time.Millisecond {
			t.Errorf("two connections behind one link: %d bytes in %v, want %v", 2*size, got, want)
		}
	})
}

// TestConnBuckets checks that each connection gets a bucket of its own and
// that no limit means no bucket.
func TestConnBuckets(t *testing.T) {
	th, _ := newThrottle(1<<20, 0, 1<<10)
	a := th.connContext(context.Background(), nil).Value(connLimiterKey{})
	b := th.connContext(context.Background(), nil).Value(connLimiterKey{})
	if a == nil || a == b {
		t.Errorf("connContext gave buckets %p and %p, want two distinct ones", a, b)
	}
	none, _ := newThrottle(0, 0, 0)
	if none.limited() || none.connContext(context.Background(), nil).Value(connLimiterKey{}) != nil {
		t.Errorf("a throttle without rates limits")
	}
	if _, err := newThrottle(1, 0, 0); err == nil {
		t.Errorf("newThrottle(1, 0, 0) accepted a rate without a burst")
	}
}

// TestServeThrottled serves a file through a throttled origin and checks
// what throttling must not change: 200 and 206 with their bodies, the
// strong ETag, If-Range, and the byte count of /.bench/stats.
func TestServeThrottled(t *testing.T) {
	dir := t.TempDir()
	content := bytes.Repeat([]byte("0123456789abcdef"), 1<<12) // 64 KiB, byte i = f(i)
	if err := os.WriteFile(filepath.Join(dir, "f.bin"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	th, err := newThrottle(64<<20, 64<<20, 16<<10)
	if err != nil {
		t.Fatal(err)
	}
	var s stats
	srv := httptest.NewUnstartedServer(handler(dir, 60, th, &s))
	srv.Config.ConnContext = th.connContext
	srv.Start()
	defer srv.Close()

	resp, body := get(t, srv.URL+"/f.bin", nil)
	etag := resp.Header.Get("Etag")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) || !strings.HasPrefix(etag, `"`) {
		t.Fatalf("GET = %d, %d bytes, ETag %q; want 200, %d bytes, a strong ETag", resp.StatusCode, len(body), etag, len(content))
	}
	resp, body = get(t, srv.URL+"/f.bin", http.Header{"Range": {"bytes=100-199"}, "If-Range": {etag}})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, content[100:200]) ||
		resp.Header.Get("Content-Range") != "bytes 100-199/65536" || resp.Header.Get("Etag") != etag {
		t.Fatalf("GET Range 100-199 = %d %q, %d bytes, ETag %q; want 206 of bytes 100-199, same ETag",
			resp.StatusCode, resp.Header.Get("Content-Range"), len(body), resp.Header.Get("Etag"))
	}
	if _, body = get(t, srv.URL+statsPath, nil); !strings.HasPrefix(string(body), "body_bytes=") {
		t.Errorf("GET %s = %q, want a line of counters", statsPath, body)
	}
	srv.Close() // waits for the handlers, which count after the client has its last byte
	if got, want := s.line(), "body_bytes=65636 requests=2 active=0 "; !strings.HasPrefix(got, want) {
		t.Errorf("stats = %q, want it to start %q", got, want)
	}
}

// TestStatsPeak checks that a read gives the most requests at once since
// the previous read, and starts the next peak at those still running.
func TestStatsPeak(t *testing.T) {
	var s stats
	end1, end2 := s.begin(), s.begin()
	end1()
	if got, want := s.line(), "body_bytes=0 requests=2 active=1 peak_active=2"; got != want {
		t.Errorf("stats = %q, want %q", got, want)
	}
	end2()
	if got, want := s.line(), "body_bytes=0 requests=2 active=0 peak_active=1"; got != want {
		t.Errorf("stats after the last ended = %q, want %q", got, want)
	}
}

// TestServeUnthrottledCounts checks that an unthrottled body is counted
// too (through ReadFrom, which keeps sendfile).
func TestServeUnthrottledCounts(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f.bin"), make([]byte, 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	th, _ := newThrottle(0, 0, 0)
	var s stats
	srv := httptest.NewServer(handler(dir, 60, th, &s))
	defer srv.Close()
	if resp, body := get(t, srv.URL+"/nostore/f.bin", nil); len(body) != 5000 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /nostore/f.bin = %d bytes, Cache-Control %q; want 5000, no-store", len(body), resp.Header.Get("Cache-Control"))
	}
	srv.Close()
	if got := s.bodyBytes.Load(); got != 5000 {
		t.Errorf("counted %d body bytes, want 5000", got)
	}
}

func get(t *testing.T, url string, h http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
