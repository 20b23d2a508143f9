package policy

import (
	"net/http"
	"testing"
)

// TestImmutableValidator: a resource a key rule says never changes is
// resumable without validators, needs an overlap unless it has a strong
// ETag, and two versions differ only in what both state.
func TestImmutableValidator(t *testing.T) {
	none := ValidatorOf(http.Header{})
	if none.Resumable() || none.Immutable().NeedsOverlap() != true || !none.Immutable().Resumable() {
		t.Errorf("no validators: Resumable %v, immutable Resumable %v NeedsOverlap %v, want false, true, true",
			none.Resumable(), none.Immutable().Resumable(), none.Immutable().NeedsOverlap())
	}
	strong := ValidatorOf(http.Header{"Etag": {`"a"`}}).Immutable()
	if strong.NeedsOverlap() {
		t.Error("immutable with a strong ETag: NeedsOverlap = true, want false")
	}
	lm := "Sat, 01 Mar 2025 02:00:00 GMT"
	cases := []struct {
		name   string
		stored http.Header
		resp   http.Header
		same   bool
	}{
		{"neither states anything", http.Header{}, http.Header{}, true},
		{"the answer adds an ETag", http.Header{}, http.Header{"Etag": {`"x"`}}, true},
		{"two weak ETags that differ", http.Header{"Etag": {`W/"a"`}}, http.Header{"Etag": {`W/"b"`}}, false},
		{"two Last-Modified that differ", http.Header{"Last-Modified": {lm}}, http.Header{"Last-Modified": {"Sun, 02 Mar 2025 02:00:00 GMT"}}, false},
		{"the same Last-Modified", http.Header{"Last-Modified": {lm}}, http.Header{"Last-Modified": {lm}}, true},
		{"another encoding", http.Header{}, http.Header{"Content-Encoding": {"gzip"}}, false},
		{"another media type (a mirror's ranges)", http.Header{"Content-Type": {"application/vnd.debian.binary-package"}}, http.Header{"Content-Type": {"application/octet-stream"}}, true},
		{"a strong ETag that differs", http.Header{"Etag": {`"a"`}}, http.Header{"Etag": {`"b"`}}, false},
	}
	for _, c := range cases {
		v := ValidatorOf(c.stored).Immutable()
		if got := v.SameVersion(ValidatorOf(c.resp)); got != c.same {
			t.Errorf("%s: SameVersion = %v, want %v", c.name, got, c.same)
		}
		if ValidatorOf(c.stored).SameVersion(ValidatorOf(c.resp)) {
			t.Errorf("%s: the mutable validator says same version without a strong validator", c.name)
		}
	}
	h := http.Header{}
	none.Immutable().SetContinueConditions(h)
	if len(h) != 0 {
		t.Errorf("SetContinueConditions without validators set %v, want nothing", h)
	}
}

// TestStorableImmutable: a response without validators or lifetime is
// storable for an immutable resource, but nothing else is relaxed.
func TestStorableImmutable(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "http://deb.test/debian/pool/main/h/hello/hello_1_amd64.deb", nil)
	bare := &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: 10}
	if Storable(req, bare) || !StorableImmutable(req, bare) {
		t.Errorf("no validators: Storable %v, StorableImmutable %v, want false, true", Storable(req, bare), StorableImmutable(req, bare))
	}
	for _, h := range []http.Header{{"Cache-Control": {"no-store"}}, {"Cache-Control": {"private"}}, {"Vary": {"*"}}} {
		if StorableImmutable(req, &http.Response{StatusCode: 200, Header: h}) {
			t.Errorf("StorableImmutable with %v = true, want false", h)
		}
	}
	if StorableImmutable(req, &http.Response{StatusCode: 302, Header: http.Header{}}) {
		t.Error("StorableImmutable of a redirect = true, want false: a redirect is never stored")
	}
}
