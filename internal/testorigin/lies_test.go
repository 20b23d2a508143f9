package testorigin

import (
	"bytes"
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

func TestPartialAs200(t *testing.T) {
	o, c := newOrigin(t, Resource{Version: 3}), client(t)
	o.PartialAs200("/f")
	// A 200 does not consume the lie.
	if resp, body := get(t, c, o.URL+"/f"); resp.StatusCode != http.StatusOK || len(body) != testSize {
		t.Errorf("GET = %d with %d bytes, want 200 with %d", resp.StatusCode, len(body), testSize)
	}
	resp, body := get(t, c, o.URL+"/f", "Range", "bytes=100-1099")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Range") != "bytes 100-1099/300000" || !bytes.Equal(body, bytesOf(3, 100, 1000)) {
		t.Errorf("lying GET = %d, Content-Range %q, %d bytes; want 200, bytes 100-1099/300000, the 1000 bytes asked for",
			resp.StatusCode, resp.Header.Get("Content-Range"), len(body))
	}
	if resp, _ := get(t, c, o.URL+"/f", "Range", "bytes=100-1099"); resp.StatusCode != http.StatusPartialContent {
		t.Errorf("next ranged GET = %d, want 206", resp.StatusCode)
	}
}

func TestEncodeRanges(t *testing.T) {
	o, c := newOrigin(t, Resource{Version: 4}), client(t)
	o.EncodeRanges("/f", "gzip")
	resp, body := get(t, c, o.URL+"/f", "Range", "bytes=100-1099", "Accept-Encoding", "gzip")
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Encoding") != "gzip" ||
		resp.Header.Get("Content-Range") != "bytes 100-1099/300000" || resp.Header.Get("ETag") != `"v4-300000"` {
		t.Errorf("lying GET = %d, Content-Encoding %q, Content-Range %q, ETag %s; want 206, gzip, bytes 100-1099/300000, the resource's",
			resp.StatusCode, resp.Header.Get("Content-Encoding"), resp.Header.Get("Content-Range"), resp.Header.Get("ETag"))
	}
	if !bytes.Equal(body, bytesOf(-5, 100, 1000)) {
		t.Errorf("lying body is not the 1000 bytes of version -5 at 100")
	}
	resp, body = get(t, c, o.URL+"/f", "Range", "bytes=100-1099")
	if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, bytesOf(4, 100, 1000)) {
		t.Errorf("next ranged GET: Content-Encoding %q, body true = %v; want none, true", resp.Header.Get("Content-Encoding"), bytes.Equal(body, bytesOf(4, 100, 1000)))
	}
}
