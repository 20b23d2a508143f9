package policy

import (
	"net/http"
	"testing"
)

// TestNotStorableReason: each rule of Storable names itself, and a
// storable response has no reason (TestStorable covers the rules).
func TestNotStorableReason(t *testing.T) {
	const fresh = "Cache-Control: max-age=60"
	for _, c := range []struct {
		name   string
		status int
		req    []string
		resp   []string
		want   string
	}{
		{"storable", 200, nil, []string{fresh}, ""},
		{"storable 206", 206, nil, []string{fresh}, ""},
		{"404", 404, nil, []string{fresh}, ReasonStatus},
		{"no-store", 200, nil, []string{"Cache-Control: max-age=60, no-store"}, ReasonNoStore},
		{"private", 200, nil, []string{"Cache-Control: private, max-age=60"}, ReasonPrivate},
		{"no-store and private", 200, nil, []string{"Cache-Control: private, no-store"}, ReasonNoStore},
		{"vary star", 200, nil, []string{fresh, "Vary: Accept-Encoding, *"}, ReasonVaryStar},
		{"authorization", 200, []string{"Authorization: Bearer x"}, []string{fresh}, ReasonAuthorized},
		{"authorization public", 200, []string{"Authorization: Bearer x"}, []string{"Cache-Control: public, max-age=60"}, ""},
		{"206 encoded", 206, nil, []string{fresh, "Content-Encoding: gzip"}, ReasonEncodedRange},
		{"200 content-range", 200, nil, []string{fresh, "Content-Range: bytes 0-9/10"}, ReasonStrayRange},
		{"nothing to revalidate with", 200, nil, []string{"Cache-Control: public"}, ReasonNoValidator},
		{"invalid etag only", 200, nil, []string{"ETag: not-quoted"}, ReasonNoValidator},
		{"etag", 200, nil, []string{`ETag: "a"`}, ""},
	} {
		req := getRequest(c.req...)
		resp := &http.Response{StatusCode: c.status, Header: headerOf(c.resp...), Request: req}
		if got := NotStorableReason(req, resp); got != c.want {
			t.Errorf("%s: NotStorableReason(%q, %d %q) = %q, want %q", c.name, c.req, c.status, c.resp, got, c.want)
		}
		if got, want := Storable(req, resp), c.want == ""; got != want {
			t.Errorf("%s: Storable = %v, want %v (reason %q)", c.name, got, want, c.want)
		}
	}
}
