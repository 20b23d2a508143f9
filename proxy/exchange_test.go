package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestMissReason: a MISS names what kept it from being a hit, and a cold
// miss of a storable response names nothing.
func TestMissReason(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	const fresh = "max-age=60"
	get := httptest.NewRequest(http.MethodGet, "http://o.test/f", nil)
	noStoreReq := httptest.NewRequest(http.MethodGet, "http://o.test/f", nil)
	noStoreReq.Header.Set("Cache-Control", "no-store")
	post := httptest.NewRequest(http.MethodPost, "http://o.test/f", nil)
	for _, c := range []struct {
		name string
		f    missFacts
		want string
	}{
		{"cold miss", missFacts{req: get, status: 200, header: h("Cache-Control", fresh, "ETag", `"a"`), size: 10}, ""},
		{"post", missFacts{req: post, status: 200, header: h(), size: 10}, ""},
		{"request no-store", missFacts{req: noStoreReq, status: 200, header: h("Cache-Control", fresh), size: 10}, "request-no-store"},
		{"response no-store", missFacts{req: get, status: 200, header: h("Cache-Control", "no-store"), size: 10}, "no-store"},
		{"private", missFacts{req: get, status: 200, header: h("Cache-Control", "private, max-age=60"), size: 10}, "private"},
		{"vary star", missFacts{req: get, status: 200, header: h("Cache-Control", fresh, "Vary", "*"), size: 10}, "vary-star"},
		{"nothing to revalidate with", missFacts{req: get, status: 200, header: h(), size: 10}, "no-validator"},
		{"404", missFacts{req: get, status: 404, header: h("Cache-Control", fresh), size: 10}, ""},
		{"unknown length", missFacts{req: get, status: 200, header: h("Cache-Control", fresh), size: -1}, "unknown-length"},
		{"too large", missFacts{req: get, status: 200, header: h("Cache-Control", fresh), size: 11, maxObject: 10}, "too-large"},
		{"stored, not resumable", missFacts{req: get, status: 200, header: h("Cache-Control", fresh, "ETag", `W/"a"`), size: 10, stored: true}, "no-validator"},
		{"stored, changed", missFacts{req: get, status: 200, header: h("Cache-Control", fresh, "ETag", `"b"`), size: 10, stored: true}, "changed"},
		{"stored, gap fetched", missFacts{req: get, status: 200, header: h("ETag", `"a"`), size: 10, stored: true, sameEntry: true}, ""},
		{"immutable without validators: a cold miss", missFacts{req: get, status: 200, header: h(), size: 10, immutable: true}, ""},
		{"immutable, stored, refetched whole", missFacts{req: get, status: 200, header: h(), size: 10, stored: true, immutable: true}, "changed"},
	} {
		if got := missReason(c.f); got != c.want {
			t.Errorf("%s: missReason = %q, want %q", c.name, got, c.want)
		}
	}
}
