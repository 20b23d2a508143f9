package proxy

import (
	"fmt"
	"net/url"
	"testing"
	"time"
)

// TestSignatureExpiry: when each signed-URL family says its signature
// ends.
func TestSignatureExpiry(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		query string
		want  time.Time
	}{
		{"X-Amz-Date=20261202T115500Z&X-Amz-Expires=300", now},
		{"X-Goog-Date=20261202T120000Z&X-Goog-Expires=900", now.Add(15 * time.Minute)},
		{fmt.Sprintf("Expires=%d&Signature=x&Key-Pair-Id=k", now.Add(time.Hour).Unix()), now.Add(time.Hour)},
		{"sv=2024-01-01&se=2026-12-02T14:00:00Z&sig=x", now.Add(2 * time.Hour)},
		{"X-Amz-Date=20261202T120000Z&X-Amz-Expires=99999999", now.Add(signatureLifetime)}, // beyond a week: not believed
		{"Expires=99999999999999", now.Add(signatureLifetime)},
		{"sv=x&se=2030-01-01T00:00:00Z", now.Add(7 * 24 * time.Hour)},
		{"verify=abc", now.Add(signatureLifetime)},
	}
	for _, c := range cases {
		q, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		if got := signatureExpiry(q, now); !got.Equal(c.want) {
			t.Errorf("signatureExpiry(%s) = %v, want %v", c.query, got, c.want)
		}
	}
}

// FuzzSignatureExpiry: any query gives an expiry no later than a week from
// now, without panicking.
func FuzzSignatureExpiry(f *testing.F) {
	f.Add("X-Amz-Date=20261202T115500Z&X-Amz-Expires=300")
	f.Add("Expires=1700000000")
	f.Add("se=2026-12-02T14:00:00Z")
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		if got := signatureExpiry(q, now); got.After(now.Add(7 * 24 * time.Hour)) {
			t.Errorf("signatureExpiry(%q) = %v, more than a week away", raw, got)
		}
	})
}

// TestRedirectsBounded: the memory keeps at most maxRedirects, dropping
// the expired first, then the one that expires first; expired ones are
// never returned.
func TestRedirectsBounded(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	var r redirects
	r.remember("old", redirect{expires: now.Add(-time.Second)}, now.Add(-time.Minute))
	if _, ok := r.lookup("old", now); ok {
		t.Error("an expired redirect was returned")
	}
	for i := range maxRedirects + 10 {
		r.remember(fmt.Sprint(i), redirect{expires: now.Add(time.Duration(i+1) * time.Second)}, now)
	}
	if len(r.m) > maxRedirects {
		t.Errorf("%d redirects kept, want ≤ %d", len(r.m), maxRedirects)
	}
	if _, ok := r.lookup("0", now); ok {
		t.Error("the redirect that expires first survived the bound")
	}
	if _, ok := r.lookup(fmt.Sprint(maxRedirects+9), now); !ok {
		t.Error("the newest redirect was dropped")
	}
}
