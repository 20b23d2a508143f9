package testorigin

// Signed URLs and redirects, as real download hosts serve them (issue 10):
// release assets behind a stable URL that redirects to a signed, expiring
// one (GitHub's releases, S3 presigned URLs). The signature has the shape
// of an S3 SigV4 query, so the proxy's key rules strip it, and the origin
// enforces it: a missing, forged or expired signature gets 403, as S3
// answers. The clock is the test's (SetClock), so a signature can expire
// mid-download without a sleep.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// guard answers a request for its path before the resource is looked up
// (a redirect, a token, a refusal) and reports whether it did; when it did
// not, the resource is served as usual. It runs without Origin.mu.
type guard func(w http.ResponseWriter, r *http.Request) (answered bool)

// amzDate is the layout of X-Amz-Date (ISO 8601 basic, UTC).
const amzDate = "20060102T150405Z"

// DefaultReleaseLifetime is how long a release redirect's signed URL stays
// valid unless Release.Lifetime says otherwise: GitHub's five minutes.
const DefaultReleaseLifetime = 5 * time.Minute

// SetClock makes the origin read the time from now when it signs URLs and
// when it checks their expiry (default time.Now), so a test can let a
// signature expire mid-download without sleeping. Date headers keep the
// real time.
func (o *Origin) SetClock(now func() time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.now = now
}

// clock returns the origin's time (SetClock).
func (o *Origin) clock() time.Time {
	o.mu.Lock()
	now := o.now
	o.mu.Unlock()
	if now == nil {
		return time.Now()
	}
	return now()
}

// SignedPath returns path with a signed query valid for lifetime (at least
// a second) from the origin's clock, shaped like an S3 SigV4 presigned
// URL: X-Amz-Algorithm, X-Amz-Credential (new at every call, so no two
// signed URLs are alike, as two clients' would not be), X-Amz-Date,
// X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature, an HMAC-SHA256
// of the path and those fields under the origin's own key. Paths given to
// RequireSignature accept it until it expires.
func (o *Origin) SignedPath(path string, lifetime time.Duration) string {
	date := o.clock().UTC().Format(amzDate)
	o.mu.Lock()
	o.signed++
	cred := fmt.Sprintf("TESTORIGIN%d/%s/us-east-1/s3/aws4_request", o.signed, date[:8])
	o.mu.Unlock()
	secs := strconv.FormatInt(max(int64((lifetime+time.Second-1)/time.Second), 1), 10)
	q := url.Values{ // Encode sorts the names, as SigV4's canonical query does
		"X-Amz-Algorithm":     {"AWS4-HMAC-SHA256"},
		"X-Amz-Credential":    {cred},
		"X-Amz-Date":          {date},
		"X-Amz-Expires":       {secs},
		"X-Amz-SignedHeaders": {"host"},
		"X-Amz-Signature":     {o.signature(path, cred, date, secs)},
	}
	return path + "?" + q.Encode()
}

// signature is the hex HMAC-SHA256 of a signed URL's path and fields.
func (o *Origin) signature(path, cred, date, secs string) string {
	m := hmac.New(sha256.New, o.signKey)
	fmt.Fprintf(m, "%s\n%s\n%s\n%s", path, cred, date, secs)
	return hex.EncodeToString(m.Sum(nil))
}

// checkSignature returns why r's signed query does not allow r.URL.Path,
// or "" when it does.
func (o *Origin) checkSignature(r *http.Request) string {
	q := r.URL.Query()
	cred, date, secs, sig := q.Get("X-Amz-Credential"), q.Get("X-Amz-Date"), q.Get("X-Amz-Expires"), q.Get("X-Amz-Signature")
	if sig == "" {
		return "no signature"
	}
	want := o.signature(r.URL.Path, cred, date, secs)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return "signature does not match"
	}
	t, err := time.Parse(amzDate, date)
	n, nerr := strconv.ParseInt(secs, 10, 64)
	if err != nil || nerr != nil {
		return "bad X-Amz-Date or X-Amz-Expires" // signed, so ours: cannot happen
	}
	if o.clock().After(t.Add(time.Duration(n) * time.Second)) {
		return "request has expired"
	}
	return ""
}

// RequireSignature makes requests for path get 403 Forbidden unless their
// query carries an unexpired signature of path from SignedPath. The check
// is made when a request arrives: a response under way continues past the
// expiry, as S3's does, and the next request (a resume) is refused.
func (o *Origin) RequireSignature(path string) {
	o.setGuard(path, func(w http.ResponseWriter, r *http.Request) bool {
		if why := o.checkSignature(r); why != "" {
			writeShort(w, r, http.StatusForbidden, "testorigin: access denied: "+why+"\n")
			return true
		}
		return false
	})
}

// setGuard installs g for path.
func (o *Origin) setGuard(path string, g guard) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pathLocked(path).guard = g
}

// Release configures AddRelease. The zero value is GitHub's behaviour on
// one host.
type Release struct {
	// Lifetime is how long each signed URL the redirect hands out stays
	// valid. Default DefaultReleaseLifetime.
	Lifetime time.Duration
	// Host, when set, is the host[:port] the redirect points at, with the
	// request's scheme, as GitHub serves assets from a host of their own
	// (the origin answers any host name a test dials to it). Default "":
	// a Location on the request's host (path and query only).
	Host string
}

// AddRelease serves r as a release asset: GET path answers 302 Found with
// a Location to a freshly signed URL (SignedPath) of assetPath, which
// serves r only while that signature is valid, else 403. assetPath is
// "/release-assets" + path; versions, faults and byte counts apply to it as
// to any path. The redirect itself carries no body and no validators.
func (o *Origin) AddRelease(path string, r Resource, opt Release) (assetPath string) {
	o.tb.Helper()
	assetPath = "/release-assets" + path
	lifetime := opt.Lifetime
	if lifetime <= 0 {
		lifetime = DefaultReleaseLifetime
	}
	o.Set(assetPath, r)
	o.RequireSignature(assetPath)
	o.setGuard(path, func(w http.ResponseWriter, req *http.Request) bool {
		w.Header().Set("Location", location(req, opt.Host, o.SignedPath(assetPath, lifetime)))
		writeShort(w, req, http.StatusFound, "")
		return true
	})
	return assetPath
}

// location is target (a path and query) as a Location field: on host when
// set, with r's scheme, else relative to r's own host.
func location(r *http.Request, host, target string) string {
	if host == "" {
		return target
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + host + target
}
