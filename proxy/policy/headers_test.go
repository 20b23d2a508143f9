package policy

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

func TestRemoveHopByHop(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []string
		want http.Header
	}{
		{"empty", nil, http.Header{}},
		{"end-to-end kept", []string{"Content-Type: text/plain", "ETag: \"a\"", "Cache-Control: max-age=60"},
			http.Header{"Content-Type": {"text/plain"}, "Etag": {`"a"`}, "Cache-Control": {"max-age=60"}}},
		// RFC 9110 §7.6.1 and the proxy-authentication pair of §11.7.
		{"fixed list", []string{
			"Connection: close", "Proxy-Connection: keep-alive", "Keep-Alive: timeout=5", "TE: trailers",
			"Trailer: X-Sum", "Transfer-Encoding: chunked", "Upgrade: h2c",
			"Proxy-Authenticate: Basic", "Proxy-Authorization: Basic eA==", "Accept: */*",
		}, http.Header{"Accept": {"*/*"}}},
		// RFC 9110 §7.6.1: every field Connection names, in any case.
		{"named by connection", []string{"Connection: X-Foo, x-bar", "X-Foo: 1", "X-Bar: 2", "X-Baz: 3"},
			http.Header{"X-Baz": {"3"}}},
		{"connection on two lines", []string{"Connection: x-foo", "Connection: X-BAR", "X-Foo: 1", "X-Bar: 2", "X-Baz: 3"},
			http.Header{"X-Baz": {"3"}}},
		{"connection whitespace and empty elements", []string{"Connection: ,  x-foo ,, ", "X-Foo: 1", "X-Baz: 3"},
			http.Header{"X-Baz": {"3"}}},
		{"every line of a named field", []string{"Connection: X-Foo", "X-Foo: 1", "X-Foo: 2"}, http.Header{}},
		{"connection names an end-to-end field", []string{"Connection: Cache-Control", "Cache-Control: no-cache", "Accept: */*"},
			http.Header{"Accept": {"*/*"}}},
		{"close option", []string{"Connection: close", "Accept: */*"}, http.Header{"Accept": {"*/*"}}},
	} {
		h := headerOf(c.in...)
		RemoveHopByHop(h)
		if !reflect.DeepEqual(h, c.want) {
			t.Errorf("%s: removeHopByHop(%q) = %v, want %v", c.name, c.in, h, c.want)
		}
	}
}

func TestStoredHeader(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []string
		want http.Header
	}{
		{"kept", []string{
			"Content-Type: text/plain", `ETag: "a"`, "Last-Modified: " + httpDate(ruleLM), "Date: " + httpDate(ruleT0),
			"Cache-Control: max-age=60", "Expires: " + httpDate(ruleT0), "Vary: Accept-Encoding", "Content-Encoding: gzip",
			"Accept-Ranges: bytes", "X-Custom: 1",
		}, http.Header{
			"Content-Type": {"text/plain"}, "Etag": {`"a"`}, "Last-Modified": {httpDate(ruleLM)}, "Date": {httpDate(ruleT0)},
			"Cache-Control": {"max-age=60"}, "Expires": {httpDate(ruleT0)}, "Vary": {"Accept-Encoding"}, "Content-Encoding": {"gzip"},
			"Accept-Ranges": {"bytes"}, "X-Custom": {"1"},
		}},
		// Set-Cookie belongs to one client (DESIGN invariant 6); framing and
		// Age belong to one message (RFC 9111 §4.2.3 recomputes Age).
		{"dropped", []string{
			"Set-Cookie: a=1", "Set-Cookie: b=2", "Set-Cookie2: c=3", "Content-Length: 10", "Content-Range: bytes 0-9/100",
			"Age: 30", "X-Cache: HIT", "Content-Type: text/plain",
		}, http.Header{"Content-Type": {"text/plain"}}},
		{"hop-by-hop", []string{
			"Connection: X-Conn", "X-Conn: 1", "Keep-Alive: timeout=5", "Transfer-Encoding: chunked",
			"Proxy-Authenticate: Basic", "Trailer: X-Sum", "Upgrade: h2c", "Content-Type: text/plain",
		}, http.Header{"Content-Type": {"text/plain"}}},
	} {
		in := headerOf(c.in...)
		before := in.Clone()
		got := StoredHeader(in)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: storedHeader(%q) = %v, want %v", c.name, c.in, got, c.want)
		}
		if !reflect.DeepEqual(in, before) {
			t.Errorf("%s: storedHeader changed its argument to %v, want %v", c.name, in, before)
		}
	}
}

func TestUpstreamHeader(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []string
		want http.Header
	}{
		{"plain", nil, http.Header{"Via": {"1.1 rp"}}},
		{"end-to-end kept", []string{
			"Accept-Encoding: gzip", "Authorization: Bearer x", "Cache-Control: no-cache", "User-Agent: curl", "Cookie: a=1",
		}, http.Header{
			"Accept-Encoding": {"gzip"}, "Authorization": {"Bearer x"}, "Cache-Control": {"no-cache"},
			"User-Agent": {"curl"}, "Cookie": {"a=1"}, "Via": {"1.1 rp"},
		}},
		// The client's preconditions and Range are evaluated against the
		// cache; upstream gets ours (RFC 9110 §13.1, §14.2).
		{"conditionals and range dropped", []string{
			`If-Match: "a"`, `If-None-Match: "a"`, "If-Modified-Since: " + httpDate(ruleLM),
			"If-Unmodified-Since: " + httpDate(ruleLM), `If-Range: "a"`, "Range: bytes=0-9", "Accept: */*",
		}, http.Header{"Accept": {"*/*"}, "Via": {"1.1 rp"}}},
		{"hop-by-hop dropped", []string{
			"Connection: X-Conn", "X-Conn: 1", "Proxy-Connection: keep-alive", "Keep-Alive: 300", "TE: trailers",
			"Proxy-Authorization: Basic eA==", "Upgrade: websocket", "Accept: */*",
		}, http.Header{"Accept": {"*/*"}, "Via": {"1.1 rp"}}},
		// RFC 9110 §7.6.3: each proxy appends its own hop.
		{"via appended", []string{"Via: 1.0 fred, 1.1 example.com"},
			http.Header{"Via": {"1.0 fred, 1.1 example.com", "1.1 rp"}}},
	} {
		in := headerOf(c.in...)
		before := in.Clone()
		got := UpstreamHeader(in, "rp")
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: upstreamHeader(%q, rp) = %v, want %v", c.name, c.in, got, c.want)
		}
		if !reflect.DeepEqual(in, before) {
			t.Errorf("%s: upstreamHeader changed its argument to %v, want %v", c.name, in, before)
		}
	}
}

func TestAddVia(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want []string
	}{
		{nil, []string{"1.1 rp"}},
		{[]string{"Via: 1.0 fred"}, []string{"1.0 fred", "1.1 rp"}},
		{[]string{"Via: 1.0 fred", "Via: 1.1 p2"}, []string{"1.0 fred", "1.1 p2", "1.1 rp"}},
	} {
		h := headerOf(c.in...)
		AddVia(h, "rp")
		if got := h.Values("Via"); !reflect.DeepEqual(got, c.want) {
			t.Errorf("addVia(%q, rp) = %q, want %q", c.in, got, c.want)
		}
	}
}

// BenchmarkRemoveHopByHop: every proxied request and relayed response
// goes through removeHopByHop, most more than once.
func BenchmarkRemoveHopByHop(b *testing.B) {
	in := headerOf("User-Agent: Go-http-client/1.1", "Accept: */*", "Accept-Encoding: gzip", "Proxy-Connection: keep-alive")
	b.ReportAllocs()
	for b.Loop() {
		h := http.Header{}
		for k, v := range in {
			h[k] = v
		}
		RemoveHopByHop(h)
	}
}

// TestHeaderListsCanonical: deleteCanonical matches map keys as they are,
// so a list name not in canonical form would never match.
func TestHeaderListsCanonical(t *testing.T) {
	for _, list := range [][]string{hopByHop, notStored, conditionalFields} {
		for _, name := range list {
			if c := http.CanonicalHeaderKey(name); c != name {
				t.Errorf("header list name %q, want canonical %q", name, c)
			}
		}
	}
}

// TestCacheKey: one key per resource, and the scheme is part of it:
// https://h/p and http://h/p are different entries (issue 8).
func TestCacheKey(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"http://Example.COM/a?b=1#frag", "http://example.com/a?b=1"},
		{"http://example.com:80/a", "http://example.com/a"},
		{"https://example.com:443/a", "https://example.com/a"},
		{"https://example.com:80/a", "https://example.com:80/a"},
		{"http://example.com:443/a", "http://example.com:443/a"},
		{"https://example.com", "https://example.com/"},
		{"https://[::1]:443/a", "https://[::1]/a"},
		{"https://user:pw@example.com/a", "https://example.com/a"},
	} {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := CacheKey(u); got != c.want {
			t.Errorf("cacheKey(%s) = %s, want %s", c.url, got, c.want)
		}
	}
	h, _ := url.Parse("http://example.com/a")
	s, _ := url.Parse("https://example.com/a")
	if CacheKey(h) == CacheKey(s) {
		t.Errorf("cacheKey(http) = cacheKey(https) = %s, want different entries", CacheKey(h))
	}
}
