package testorigin

import (
	"net/http"
	"testing"
)

func TestNotModifiedWith(t *testing.T) {
	o, c := newOrigin(t, Resource{Version: 2, CacheControl: "max-age=60"}), client(t)
	o.NotModifiedWith("/f", `"other"`)
	// HEAD does not consume the lie.
	if resp, _, _ := fetch(t, c, http.MethodHead, o.URL+"/f"); resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD = %d, want 200", resp.StatusCode)
	}
	resp, body := get(t, c, o.URL+"/f", "If-None-Match", `"v2-300000"`)
	if resp.StatusCode != http.StatusNotModified || resp.Header.Get("ETag") != `"other"` || len(body) != 0 {
		t.Errorf("lying GET = %d, ETag %s, %d bytes; want 304, \"other\", no body", resp.StatusCode, resp.Header.Get("ETag"), len(body))
	}
	if got := resp.Header.Get("Cache-Control"); got != "max-age=60" {
		t.Errorf("lying 304 Cache-Control = %q, want the resource's", got)
	}
	resp, body = get(t, c, o.URL+"/f")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != `"v2-300000"` || len(body) != testSize {
		t.Errorf("next GET = %d, ETag %s, %d bytes; want the truth", resp.StatusCode, resp.Header.Get("ETag"), len(body))
	}
}
