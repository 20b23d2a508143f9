package proxy

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

// smallSize is the body of make bench's small pass-through case.
const smallSize = 10000

// smallRig is a proxy on a real listener in front of a plain httptest
// origin that answers every path with smallSize bytes and the given
// Cache-Control, counting the connections it accepts: the shape of make
// bench's small pass-through case, without fault injection in the way.
type smallRig struct {
	origin *httptest.Server
	client *http.Client
	// conns counts the connections the origin accepted.
	conns atomic.Int64
	body  []byte
}

func newSmallRig(tb testing.TB, cacheControl string) *smallRig {
	tb.Helper()
	r := &smallRig{body: bytes.Repeat([]byte("0123456789"), smallSize/10)}
	r.origin = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", cacheControl)
		w.Header().Set("Content-Length", strconv.Itoa(len(r.body)))
		w.Write(r.body)
	}))
	r.origin.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.conns.Add(1)
		}
	}
	r.origin.Start()
	tb.Cleanup(r.origin.Close)
	store, err := cache.Open(tb.TempDir(), cache.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatalf("cache.Open: %v", err)
	}
	srv := NewServer(New(Options{Store: store, Logger: slog.New(slog.DiscardHandler)}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	go srv.Serve(ln)
	pu, _ := url.Parse("http://" + ln.Addr().String())
	tr := &http.Transport{Proxy: http.ProxyURL(pu), DisableCompression: true, MaxIdleConnsPerHost: 64}
	r.client = &http.Client{Transport: tr}
	tb.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
		if err := store.Close(); err != nil {
			tb.Errorf("store.Close: %v", err)
		}
	})
	return r
}

// get fetches the i-th distinct URL through the proxy and checks the reply.
func (r *smallRig) get(i int) error {
	resp, err := r.client.Get(r.origin.URL + "/small?i=" + strconv.Itoa(i))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	switch {
	case err != nil:
		return fmt.Errorf("GET %d: body: %w", i, err)
	case resp.StatusCode != http.StatusOK || n != int64(len(r.body)):
		return fmt.Errorf("GET %d: status %d, %d bytes; want 200, %d bytes", i, resp.StatusCode, n, len(r.body))
	case resp.Header.Get("X-Cache") != xMiss || resp.Header.Get("Via") == "":
		return fmt.Errorf("GET %d: X-Cache %q, Via %q; want MISS and our hop", i, resp.Header.Get("X-Cache"), resp.Header.Get("Via"))
	}
	return nil
}

// TestNoStoreReusesUpstreamConnections: sequential no-store requests for
// distinct URLs share one upstream connection instead of opening one each.
func TestNoStoreReusesUpstreamConnections(t *testing.T) {
	r := newSmallRig(t, "no-store")
	for i := range 50 {
		if err := r.get(i); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.conns.Load(); n != 1 {
		t.Errorf("origin accepted %d connections for 50 sequential requests, want 1", n)
	}
}

// TestConcurrentNoStoreReusesUpstreamConnections: 32 clients on 32
// keep-alive connections (make bench's small case) keep about 32 upstream
// connections: the transport's idle pool holds them all between requests.
func TestConcurrentNoStoreReusesUpstreamConnections(t *testing.T) {
	const clients, each = 32, 300
	r := newSmallRig(t, "no-store")
	errs := make(chan error, clients)
	for c := range clients {
		go func() {
			for i := range each {
				if err := r.get(c*each + i); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("origin accepted %d connections for %d requests on %d clients", r.conns.Load(), clients*each, clients)
	// A request may find its connection not yet back in the pool and dial
	// another; closing and reopening connections would show in the hundreds.
	if n := r.conns.Load(); n > 2*clients {
		t.Errorf("origin accepted %d connections for %d clients, want ≤ %d", n, clients, 2*clients)
	}
}

// BenchmarkPassThrough is make bench's small case in one process: 10 KB
// no-store GETs of distinct URLs through a real listener.
func BenchmarkPassThrough(b *testing.B) {
	r := newSmallRig(b, "no-store")
	b.SetBytes(smallSize)
	b.ReportAllocs()
	var i atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := r.get(int(i.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestRelayedDropLooksCut: a relayed body (not stored: no-store, or of
// unknown length) that the upstream drops mid-way cuts the client, whose
// copy goes through the body's WriteTo (DESIGN invariant 4).
func TestRelayedDropLooksCut(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		for _, c := range []struct {
			name string
			res  testorigin.Resource
		}{
			{"no-store", testorigin.Resource{Size: 4 * mib, CacheControl: "no-store"}},
			{"no-store chunked", testorigin.Resource{Size: 4 * mib, CacheControl: "no-store", Chunked: true}},
		} {
			t.Run(c.name, func(t *testing.T) {
				h := newSchemeHarness(t, s)
				u := h.set("/f", c.res)
				h.origin.DropAt("/f", mib+7)
				if r := h.get(u); r.err == nil || r.n >= c.res.Size {
					t.Fatalf("relay dropped at %d: body of %d bytes, error %v; want a cut", mib+7, r.n, r.err)
				}
				wantBody(t, "after the drop", h.get(u), 200, 0, 0, c.res.Size)
			})
		}
	})
}

// TestConcurrentColdNoStore: clients that wait on a cold fetch whose
// response turns out not to be storable fetch on their own, and every one
// gets the whole body; a storable one is fetched once for all. (Whether a
// client waits depends on timing; the outcome must not.)
func TestConcurrentColdNoStore(t *testing.T) {
	for _, c := range []struct {
		cacheControl string
		wantFetches  int
	}{
		{"no-store", 8},
		{"max-age=60", 1},
	} {
		t.Run(c.cacheControl, func(t *testing.T) {
			h := newHarness(t)
			u := h.set("/f", testorigin.Resource{Size: mib, CacheControl: c.cacheControl})
			for i, r := range h.getAll(8, u, func(int) []string { return nil }) {
				wantBody(t, "client "+itoa(int64(i)), r, 200, 0, 0, mib)
			}
			if n := len(h.origin.Requests("/f")); n != c.wantFetches {
				t.Errorf("origin saw %d requests for 8 cold clients, want %d", n, c.wantFetches)
			}
		})
	}
}
