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

func TestReplaceContent(t *testing.T) {
	o, c := newOrigin(t, Resource{Version: 1, Validators: LastModifiedOnly}), client(t)
	before, _ := o.Resource("/f")
	lm := before.LastModified().Format(http.TimeFormat)
	o.ReplaceContent("/f", 2)
	resp, body := get(t, c, o.URL+"/f", "Range", "bytes=100-199", "If-Range", lm)
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Last-Modified") != lm || !bytes.Equal(body, bytesOf(2, 100, 100)) {
		t.Errorf("after ReplaceContent: %d, Last-Modified %s, new bytes %v; want 206, %s, the bytes of version 2",
			resp.StatusCode, resp.Header.Get("Last-Modified"), bytes.Equal(body, bytesOf(2, 100, 100)), lm)
	}
	if r, _ := o.Resource("/f"); r.Version != 2 || !r.LastModified().Equal(before.LastModified()) || r.ETag() != "" {
		t.Errorf("Resource: version %d, Last-Modified %v; want 2, %v", r.Version, r.LastModified(), before.LastModified())
	}
	o.SetVersion("/f", 3)
	if resp, body := get(t, c, o.URL+"/f"); resp.Header.Get("Last-Modified") == lm || !bytes.Equal(body, bytesOf(3, 0, testSize)) {
		t.Errorf("SetVersion after ReplaceContent: Last-Modified %s, want version 3's", resp.Header.Get("Last-Modified"))
	}
}

func TestReplaceContentAt(t *testing.T) {
	o, c := newOrigin(t, Resource{Version: 1}), client(t)
	o.ReplaceContentAt("/f", 100_000)
	resp, body, err := fetch(t, c, http.MethodGet, o.URL+"/f")
	if err == nil || resp.Header.Get("ETag") != `"v1-300000"` || !bytes.Equal(body, bytesOf(1, 0, 100_000)) {
		t.Fatalf("first response: ETag %s, %d bytes, error %v; want v1, 100000 bytes of v1, an error",
			resp.Header.Get("ETag"), len(body), err)
	}
	// Same ETag, new content: If-Range still matches.
	resp, body = get(t, c, o.URL+"/f", "Range", "bytes=100000-", "If-Range", `"v1-300000"`)
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("ETag") != `"v1-300000"` || !bytes.Equal(body, bytesOf(2, 100_000, testSize-100_000)) {
		t.Errorf("resume: %d, ETag %s, %d bytes; want 206, v1, the rest of version 2's content", resp.StatusCode, resp.Header.Get("ETag"), len(body))
	}
}
