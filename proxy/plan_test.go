package proxy

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/proxy/policy"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// TestPlan: which step a request for a stored version takes, and which
// bytes it needs.
func TestPlan(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	const size = 1000
	whole := rangeutil.Range{Start: 0, End: size}
	half := rangeutil.Range{Start: 0, End: size / 2}
	stored := func(cc string, have rangeutil.Range) cache.Meta {
		var rs rangeutil.Set
		rs.Insert(have)
		return cache.Meta{
			Header: map[string][]string{
				"Etag":          {`"v1"`},
				"Cache-Control": {cc},
				"Date":          {now.Add(-10 * time.Second).Format(http.TimeFormat)},
				"Vary":          {"Accept-Encoding"},
			},
			RequestHeader: map[string][]string{"Accept-Encoding": {"gzip"}},
			Size:          size,
			Ranges:        rs,
			ResponseTime:  now.Add(-10 * time.Second),
			RequestTime:   now.Add(-10 * time.Second),
		}
	}
	guarded := stored("max-age=60", whole)
	guarded.Guarded = true
	digest := stored("max-age=60", whole)
	digest.Digest, digest.Immutable = "sha256:"+strings.Repeat("ab", 32), true
	guardedHalf := stored("max-age=60", half)
	guardedHalf.Guarded = true
	immutable := stored("", whole)
	immutable.Immutable = true
	cases := []struct {
		name    string
		m       cache.Meta
		header  http.Header
		vouched bool
		want    step
		need    rangeutil.Range
	}{
		{"fresh and complete", stored("max-age=60", whole), nil, false, stepHit, whole},
		{"stale and complete", stored("max-age=5", whole), nil, false, stepRevalidate, whole},
		{"no-cache is never fresh", stored("no-cache", whole), nil, false, stepRevalidate, whole},
		{"half stored", stored("max-age=60", half), nil, false, stepRefill, whole},
		{"half stored, stale", stored("max-age=5", half), nil, false, stepRefill, whole},
		{"the stored half asked for", stored("max-age=60", half), http.Header{"Range": {"bytes=0-99"}}, false, stepHit, rangeutil.Range{Start: 0, End: 100}},
		{"the missing half asked for", stored("max-age=60", half), http.Header{"Range": {"bytes=900-"}}, false, stepRefill, rangeutil.Range{Start: 900, End: size}},
		{"another variant", stored("max-age=60", whole), http.Header{"Accept-Encoding": {"br"}}, false, stepOtherVariant, rangeutil.Range{}},
		{"guarded: the client must be accepted", guarded, nil, false, stepPermit, whole},
		{"guarded and missing bytes: the refill asks", guardedHalf, nil, false, stepRefill, whole},
		{"a digest for an anonymous client", digest, nil, false, stepHit, whole},
		{"a digest for a client with credentials", digest, nil, true, stepPermit, whole},
		{"immutable without freshness: a hit", immutable, http.Header{"Cache-Control": {"max-age=0"}}, false, stepHit, whole},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "http://origin.test/f", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept-Encoding", "gzip")
			for k, vs := range c.header {
				req.Header[k] = vs
			}
			got, need := plan(req, c.m, now, c.vouched)
			if got != c.want || need != c.need {
				t.Errorf("plan = %d, %v, want %d, %v", got, need, c.want, c.need)
			}
		})
	}
}

// TestClassifyRefill: what the upstream's answer to a refill (bytes 500-
// of version "v1", 1000 bytes, If-Range) means.
func TestClassifyRefill(t *testing.T) {
	const size = 1000
	ask := rangeutil.Range{Start: 500, End: size}
	v := policy.ValidatorOf(http.Header{"Etag": {`"v1"`}})
	answer := func(status int, etag, contentRange string, length int64) *http.Response {
		h := http.Header{}
		if etag != "" {
			h.Set("ETag", etag)
		}
		if contentRange != "" {
			h.Set("Content-Range", contentRange)
		}
		return &http.Response{StatusCode: status, Header: h, ContentLength: length}
	}
	cases := []struct {
		name   string
		resp   *http.Response
		want   refillOutcome
		reason error // for refillBroken
	}{
		{"206 of the same version", answer(206, `"v1"`, "bytes 500-999/1000", 500), refillSplice, nil},
		{"206 of a prefix of the bytes asked", answer(206, `"v1"`, "bytes 500-799/1000", 300), refillSplice, nil},
		{"206 of another version", answer(206, `"v2"`, "bytes 500-999/1000", 500), refillBroken, errChanged},
		{"206 with another total", answer(206, `"v1"`, "bytes 500-1199/1200", 700), refillBroken, errChanged},
		{"206 of other bytes", answer(206, `"v1"`, "bytes 0-499/1000", 500), refillBroken, policy.ErrBadRange},
		{"206 without Content-Range", answer(206, `"v1"`, "", 500), refillBroken, policy.ErrBadRange},
		{"206 whose length disagrees", answer(206, `"v1"`, "bytes 500-999/1000", 400), refillBroken, policy.ErrBadRange},
		{"200: a new version", answer(200, `"v2"`, "", size), refillReplaced, nil},
		{"200: Range ignored", answer(200, `"v1"`, "", size), refillReplaced, nil},
		{"416: the size changed", answer(416, "", "bytes */400", 0), refillSizeChanged, nil},
		{"404", answer(404, "", "", 0), refillGone, nil},
		{"410", answer(410, "", "", 0), refillGone, nil},
		{"503", answer(503, "", "", 0), refillPassOn, nil},
		{"403", answer(403, "", "", 0), refillPassOn, nil},
		{"304 to If-Range (not allowed)", answer(304, `"v1"`, "", 0), refillPassOn, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, why := classifyRefill(c.resp, ask, size, v)
			if got != c.want {
				t.Errorf("classifyRefill = %d (%v), want %d", got, why, c.want)
			}
			switch {
			case c.reason == nil && why != nil:
				t.Errorf("reason %v, want none", why)
			case c.reason != nil && !errors.Is(why, c.reason):
				t.Errorf("reason %v, want %v", why, c.reason)
			}
		})
	}
}
