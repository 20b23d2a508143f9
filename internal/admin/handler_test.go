package admin

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/proxy"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// fakeCache is a CacheView over a map of entries.
type fakeCache struct{ entries map[string]cache.Info }

func (f *fakeCache) List(fn func(cache.Info) bool) error {
	for _, k := range []string{"http://a.test/done.iso", "http://a.test/half.iso"} {
		if i, ok := f.entries[k]; ok && !fn(i) {
			break
		}
	}
	return nil
}

func (f *fakeCache) Purge(key string) (bool, error) {
	_, ok := f.entries[key]
	delete(f.entries, key)
	return ok, nil
}

func (f *fakeCache) PurgePrefix(prefix string) ([]string, error) {
	var out []string
	for k := range f.entries {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
			delete(f.entries, k)
		}
	}
	return out, nil
}

func (f *fakeCache) Verify(bad func(string, int64)) (cache.VerifyReport, error) {
	bad("http://a.test/half.iso", 3)
	return cache.VerifyReport{Entries: len(f.entries), Blocks: 7, Bad: 1}, nil
}

func (f *fakeCache) Usage() cache.Usage { return cache.Usage{Used: 1500, MaxSize: 10000, Purged: 2} }

// fakeProxy is a ProxyView with one download.
type fakeProxy struct{}

func (fakeProxy) Downloads() []proxy.Download {
	return []proxy.Download{{Key: "http://a.test/big.iso", Size: 1000, Stored: 600, Clients: 2, Position: 400,
		Ranges: []rangeutil.Range{{Start: 0, End: 600}}, Filling: true, FromCache: 100, FromUpstream: 300}}
}
func (fakeProxy) FillsRunning() int64 { return 1 }

func newTestHandler(t *testing.T, token string) (*Handler, *fakeCache) {
	t.Helper()
	half := rangeutil.Set{}
	half.Insert(rangeutil.Range{Start: 0, End: 500})
	fc := &fakeCache{entries: map[string]cache.Info{
		"http://a.test/done.iso": {Key: "http://a.test/done.iso", Size: 100, Stored: 100, Complete: true},
		"http://a.test/half.iso": {Key: "http://a.test/half.iso", Size: 1000, Stored: 500, Ranges: half},
	}}
	allowed := func(a netip.Addr) bool {
		return a.IsLoopback() || netip.MustParsePrefix("192.0.2.0/24").Contains(a)
	}
	h := New(Options{Proxy: fakeProxy{}, Cache: fc, Stats: NewStats(time.Now()), Allowed: allowed, Token: token,
		CacheDir: "/var/cache/rp", Version: "v1", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return h, fc
}

// do sends one request to h from client (ip:port) and returns the response.
func do(h http.Handler, method, target, client string, hdr ...string) *http.Response {
	r := httptest.NewRequest(method, target, strings.NewReader(`{"url":"http://a.test/half.iso"}`))
	r.RemoteAddr = client
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

// TestAccessRules: reading needs an allowed client; changing needs a
// loopback client or the token, and never another site's page.
func TestAccessRules(t *testing.T) {
	const token = "0123456789abcdef0123"
	for _, c := range []struct {
		name, method, target, client string
		hdr                          []string
		want                         int
	}{
		{"status, loopback", "GET", "/api/status", "127.0.0.1:5000", nil, 200},
		{"page, allowed LAN client", "GET", "/", "192.0.2.7:5000", nil, 200},
		{"metrics, allowed LAN client", "GET", "/metrics", "192.0.2.7:5000", nil, 200},
		{"healthz, not allowed", "GET", "/healthz", "198.51.100.1:5000", nil, 403},
		{"status, not allowed", "GET", "/api/status", "198.51.100.1:5000", nil, 403},
		{"purge, loopback", "POST", "/api/purge", "127.0.0.1:5000", nil, 200},
		{"purge, LAN without token", "POST", "/api/purge", "192.0.2.7:5000", nil, 403},
		{"purge, LAN wrong token", "POST", "/api/purge", "192.0.2.7:5000", []string{"Authorization", "Bearer nope"}, 403},
		{"purge, LAN with token", "POST", "/api/purge", "192.0.2.7:5000", []string{"Authorization", "Bearer " + token}, 200},
		{"purge, not allowed even with token", "POST", "/api/purge", "198.51.100.1:5000", []string{"Authorization", "Bearer " + token}, 403},
		{"purge from another site's page", "POST", "/api/purge", "127.0.0.1:5000", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"purge with a foreign Origin", "POST", "/api/purge", "127.0.0.1:5000", []string{"Origin", "http://evil.test"}, 403},
		{"delete from our own page", "DELETE", "/api/entries?url=http://a.test/done.iso", "127.0.0.1:5000",
			[]string{"Sec-Fetch-Site", "same-origin", "Origin", "http://example.com"}, 200},
		{"verify, LAN without token", "POST", "/api/verify", "192.0.2.7:5000", nil, 403},
		{"verify, loopback", "POST", "/api/verify", "127.0.0.1:5000", nil, 200},
		{"PURGE, LAN without token", "PURGE", "http://a.test/half.iso", "192.0.2.7:5000", nil, 403},
		{"PURGE, loopback, not cached", "PURGE", "http://a.test/none", "127.0.0.1:5000", nil, 404},
		{"ca.pem without interception", "GET", "/ca.pem", "127.0.0.1:5000", nil, 404},
		{"purge by GET", "GET", "/api/purge", "127.0.0.1:5000", nil, 405},
	} {
		h, _ := newTestHandler(t, token)
		resp := do(h, c.method, c.target, c.client, c.hdr...)
		if resp.StatusCode != c.want {
			b, _ := io.ReadAll(resp.Body)
			t.Errorf("%s: %s %s from %s = %d (%s), want %d", c.name, c.method, c.target, c.client, resp.StatusCode, b, c.want)
		}
	}
}

// TestPurgeAndStatus: purge removes what it names and says so; the status
// carries the download, the partial's range map and the cache's usage.
func TestPurgeAndStatus(t *testing.T) {
	h, fc := newTestHandler(t, "")
	resp := do(h, "PURGE", "http://A.test:80/half.iso", "127.0.0.1:1")
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || !strings.Contains(string(b), "purged http://a.test/half.iso") {
		t.Errorf("PURGE http://A.test:80/half.iso = %d %q, want 200 naming the key", resp.StatusCode, b)
	}
	if _, ok := fc.entries["http://a.test/half.iso"]; ok {
		t.Errorf("PURGE left the entry in the cache")
	}
	fc.entries["http://a.test/half.iso"] = cache.Info{Key: "http://a.test/half.iso", Size: 1000, Stored: 500,
		Ranges: func() rangeutil.Set { var s rangeutil.Set; s.Insert(rangeutil.Range{Start: 0, End: 500}); return s }()}
	var st Status
	if err := json.NewDecoder(do(h, "GET", "/api/status", "127.0.0.1:1").Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if len(st.Downloads) != 1 || st.Downloads[0].Clients != 2 || st.Downloads[0].Position != 400 || st.Downloads[0].ETA != -1 {
		t.Errorf("status downloads = %+v, want big.iso, 2 clients, at 400, no ETA yet", st.Downloads)
	}
	if len(st.Partials) != 1 || st.Partials[0].URL != "http://a.test/half.iso" || len(st.Partials[0].Ranges) != 1 || st.Partials[0].Ranges[0] != [2]int64{0, 500} {
		t.Errorf("status partials = %+v, want half.iso with [0,500)", st.Partials)
	}
	if st.Cache.Used != 1500 || st.Cache.Max != 10000 || st.Cache.Complete != 1 || st.Cache.Partial != 1 || st.CacheDir != "/var/cache/rp" {
		t.Errorf("status cache = %+v (dir %q), want used 1500 of 10000, 1 complete, 1 partial", st.Cache, st.CacheDir)
	}
}

// TestRates: a download's rate is how fast its furthest client moves, and
// its ETA what is left at that rate.
func TestRates(t *testing.T) {
	r := rates{last: map[string]sample{}}
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	d := proxy.Download{Key: "k", Size: 10000, Position: 1000}
	r.downloads(t0, []proxy.Download{d})
	d.Position = 3000
	got := r.downloads(t0.Add(2*time.Second), []proxy.Download{d})
	if got[0].Rate != 1000 || got[0].ETA != 7 {
		t.Errorf("after 2000 bytes in 2 s: rate %v, ETA %v, want 1000, 7", got[0].Rate, got[0].ETA)
	}
	r.downloads(t0.Add(3*time.Second), nil)
	if len(r.last) != 0 {
		t.Errorf("rates kept %d samples of finished downloads, want 0", len(r.last))
	}
}
