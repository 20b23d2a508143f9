package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/resumeproxy/resumeproxy/internal/keyrule"
	"github.com/resumeproxy/resumeproxy/proxy/policy"
)

// Redirects are remembered, never stored (issue 10, point 3): a cached
// redirect would hand out an expired signature. When the proxy relays a
// redirect to a signed URL, or from a URL naming a digest, it keeps, in
// memory only, where the redirect came from and with which request
// headers, for as long as the signature lives. Two things use it: a
// resume whose signed URL has expired asks the redirecting URL again for a
// fresh one, while its client stays connected (refreshSource); and a URL
// reached from a digest URL is keyed by that digest (keyFor).

// maxRedirects bounds the remembered redirects; the ones that expire
// first go first.
const maxRedirects = 10000

// signatureLifetime is how long a remembered redirect to a signed URL is
// kept when the URL does not say when it expires.
const signatureLifetime = time.Hour

// redirect is one remembered redirect.
type redirect struct {
	from    *url.URL
	header  http.Header // the client's end-to-end request fields (its credentials too)
	digest  keyrule.Digest
	expires time.Time
}

// redirects maps the key of a redirect's target (signature left out) to
// the redirect. Safe for concurrent use.
type redirects struct {
	mu sync.Mutex
	m  map[string]redirect
}

func (r *redirects) remember(key string, rd redirect, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]redirect{}
	}
	if _, ok := r.m[key]; !ok && len(r.m) >= maxRedirects {
		r.evictLocked(now)
	}
	r.m[key] = rd
}

// evictLocked drops the expired redirects, or when none has, the one that
// expires first.
func (r *redirects) evictLocked(now time.Time) {
	var first string
	for k, rd := range r.m {
		if !rd.expires.After(now) {
			delete(r.m, k)
			continue
		}
		if first == "" || rd.expires.Before(r.m[first].expires) {
			first = k
		}
	}
	if len(r.m) >= maxRedirects {
		delete(r.m, first)
	}
}

func (r *redirects) lookup(key string, now time.Time) (redirect, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rd, ok := r.m[key]
	if ok && !rd.expires.After(now) {
		delete(r.m, key)
		return redirect{}, false
	}
	return rd, ok
}

// isRedirect reports whether status is one a client follows to Location.
func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// noteRedirect remembers resp, a redirect relayed for req, when its target
// is signed or req named a digest.
func (p *Proxy) noteRedirect(req *http.Request, resp *http.Response) {
	loc, err := req.URL.Parse(resp.Header.Get("Location"))
	if err != nil || (loc.Scheme != "http" && loc.Scheme != "https") {
		return
	}
	from, to := keyOf(req), p.opts.Rules.Key(loc)
	if !to.Signed && from.Digest.IsZero() {
		return
	}
	now := p.now()
	digest := from.Digest
	if digest.IsZero() {
		digest = to.Digest
	}
	p.redirects.remember(to.Key, redirect{
		from:    req.URL,
		header:  policy.UpstreamHeader(req.Header, p.opts.Name),
		digest:  digest,
		expires: signatureExpiry(loc.Query(), now),
	}, now)
}

// signatureExpiry reads when a signed URL's signature expires: S3 and GCS
// V4 (X-Amz-Date or X-Goog-Date plus -Expires seconds), CloudFront and GCS
// V2 (Expires, Unix seconds), Azure SAS (se). An hour from now when it
// does not say; never more than a week (the longest any of them allows).
func signatureExpiry(q url.Values, now time.Time) time.Time {
	limit := now.Add(7 * 24 * time.Hour)
	for _, p := range []string{"X-Amz-", "X-Goog-"} {
		date, err := time.Parse("20060102T150405Z", q.Get(p+"Date"))
		secs, serr := strconv.ParseInt(q.Get(p+"Expires"), 10, 64)
		if err == nil && serr == nil && secs >= 0 && secs <= 7*24*3600 {
			return minTime(date.Add(time.Duration(secs)*time.Second), limit)
		}
	}
	if unix, err := strconv.ParseInt(q.Get("Expires"), 10, 64); err == nil && unix > 0 && unix < 1<<40 {
		return minTime(time.Unix(unix, 0), limit)
	}
	if se, err := time.Parse(time.RFC3339, q.Get("se")); err == nil {
		return minTime(se, limit)
	}
	return now.Add(signatureLifetime)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// refusedSignature reports whether err is an upstream's answer that a
// signed URL no longer grants (S3 answers 403 to an expired one, others
// 400 or 401).
func refusedSignature(err error) bool {
	var se *statusError
	if !errors.As(err, &se) {
		return false
	}
	switch se.code {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return true
	}
	return false
}

// refreshSource asks the redirect that led to src's signed URL again, with
// the headers its client sent, for a fresh URL of the same object, and
// points src at it. It reports whether it did.
func (p *Proxy) refreshSource(ctx context.Context, src *source) bool {
	signed := p.opts.Rules.Key(src.url)
	if !signed.Signed {
		return false
	}
	rd, ok := p.redirects.lookup(signed.Key, p.now())
	if !ok {
		return false
	}
	resp, _, err := p.do(ctx, rd.from, rd.header.Clone())
	if err != nil {
		p.log.Warn("cannot refresh an expired signature through its redirect", "from", clip(rd.from.Redacted()), "err", clipErr(err))
		return false
	}
	resp.Body.Close()
	loc, lerr := rd.from.Parse(resp.Header.Get("Location"))
	if !isRedirect(resp.StatusCode) || lerr != nil {
		p.log.Warn("cannot refresh an expired signature: the redirect did not redirect", "from", clip(rd.from.Redacted()), "status", resp.StatusCode)
		return false
	}
	fresh := p.opts.Rules.Key(loc)
	if fresh.Key != signed.Key {
		p.log.Warn("cannot refresh an expired signature: the redirect points elsewhere now", "from", clip(rd.from.Redacted()), "to", clip(withoutParams(loc, fresh.Stripped)))
		return false
	}
	rd.expires = signatureExpiry(loc.Query(), p.now())
	p.redirects.remember(fresh.Key, rd, p.now())
	p.log.Info("signature refreshed through its redirect", "url", clip(withoutParams(loc, fresh.Stripped)), "from", clip(rd.from.Redacted()), "expires", rd.expires)
	src.url = loc
	return true
}
