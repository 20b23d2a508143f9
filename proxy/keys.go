package proxy

import (
	"context"
	"net/http"
	"net/url"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/internal/keyrule"
	"github.com/resumeproxy/resumeproxy/proxy/policy"
)

// How a request is keyed (issue 10): Options.Rules (internal/keyrule) says
// which key a URL gets, whether signature parameters were left out of it,
// whether its path names its content by digest, and whether it never
// changes; a URL reached by a redirect from a digest URL takes that digest
// (redirects.go). serve computes it once and carries it in the request's
// context; every step of the request path reads it with keyOf.

// keyCtx is the context key of a request's keyrule.Result.
type keyCtx struct{}

// keyFor keys req: Options.Rules, then what a remembered redirect from a
// URL naming a digest says.
func (p *Proxy) keyFor(req *http.Request) keyrule.Result {
	k := p.opts.Rules.Key(req.URL)
	if !k.Digest.IsZero() {
		return k
	}
	if rd, ok := p.redirects.lookup(k.Key, p.now()); ok && !rd.digest.IsZero() {
		k.Key = keyrule.DigestPrefix + rd.digest.String()
		k.Digest, k.Immutable = rd.digest, true
		k.Rule = joinRules(k.Rule, "redirect-from-digest")
	}
	return k
}

func joinRules(a, b string) string {
	if a == "" {
		return b
	}
	return a + "," + b
}

// withKey returns req carrying its key.
func withKey(req *http.Request, k keyrule.Result) *http.Request {
	return req.WithContext(context.WithValue(req.Context(), keyCtx{}, k))
}

// keyOf returns the key serve gave req; policy.CacheKey's for a request
// that did not come through serve.
func keyOf(req *http.Request) keyrule.Result {
	if k, ok := req.Context().Value(keyCtx{}).(keyrule.Result); ok {
		return k
	}
	return keyrule.Result{Key: policy.CacheKey(req.URL)}
}

// storable reports whether resp, the answer to req, may be stored under
// req's key: by RFC 9111, or, for a resource that never changes, without
// anything to decide freshness or revalidate with.
func storable(req *http.Request, resp *http.Response) bool {
	k := keyOf(req)
	if !k.Digest.IsZero() && req.Header.Get("Authorization") != "" {
		// A digest names the same bytes for everyone: credentials do not
		// make them a private response (RFC 9111 §3.5 cannot know that).
		// The version is Guarded, so each client still needs the
		// upstream's word before it gets them.
		anon := req.Clone(req.Context())
		anon.Header.Del("Authorization")
		req = anon
	}
	if k.Immutable {
		return policy.StorableImmutable(req, resp)
	}
	return policy.Storable(req, resp)
}

// storedFlags sets what a new version keeps of how req was keyed.
func storedFlags(req *http.Request, m *cache.Meta) {
	k := keyOf(req)
	m.Immutable = k.Immutable
	m.Digest = k.Digest.String()
	// A signature made the upstream give these bytes, or credentials did
	// and only the digest rule let them be stored (storable): every client
	// must be accepted by the upstream before it gets them (permit). A
	// response to credentials that RFC 9111 §3.5 lets a cache store
	// (public, s-maxage, must-revalidate) is the origin's word that anyone
	// may have it.
	m.Guarded = k.Signed || !k.Digest.IsZero() && req.Header.Get("Authorization") != ""
}

// vouched reports whether req carries a signature or credentials, which
// only the upstream can judge.
func vouched(req *http.Request) bool {
	return keyOf(req).Signed || req.Header.Get("Authorization") != ""
}

// validatorOf is the validator of a stored version, immutable when its
// key said so.
func validatorOf(m cache.Meta) policy.Validator {
	v := policy.ValidatorOf(m.Header)
	if m.Immutable {
		v = v.Immutable()
	}
	return v
}

// accepted reports whether an upstream's answer to a client's own request
// grants it the resource: anything but a refusal or a failure (a 3xx is a
// registry that took the client's token and sends it to its blob store).
func accepted(status int) bool {
	return status >= 200 && status < 400 || status == http.StatusPreconditionFailed || status == http.StatusRequestedRangeNotSatisfiable
}

// permit asks the upstream whether req, the client's own request (its
// signature, its credentials), may have the guarded version m: a request
// for its first byte. nil when the upstream accepted; otherwise the
// answer for the client (the upstream's refusal, or a 502). Stored bytes
// of a guarded version reach a client only after this or another request
// of its own (a revalidation, a refill) was accepted: a signature is a
// permission, and the cache must not lend one client's to another.
func (p *Proxy) permit(req *http.Request) *http.Response {
	h := policy.UpstreamHeader(req.Header, p.opts.Name)
	h.Set("Range", "bytes=0-0")
	ctx, cancel := context.WithTimeout(context.Background(), p.idleTimeout())
	resp, _, err := p.do(ctx, req.URL, h)
	if err != nil {
		cancel()
		return upstreamErrorResponse(req, err)
	}
	if !accepted(resp.StatusCode) {
		p.log.Info("upstream refused a client the stored bytes of a guarded entry", "url", clip(redacted(req)), "status", resp.StatusCode)
		return p.relay(req, resp, cancel)
	}
	resp.Body.Close()
	cancel()
	return nil
}

// redacted is req's URL for logs: without signature parameters or
// userinfo.
func redacted(req *http.Request) string {
	return withoutParams(req.URL, keyOf(req).Stripped)
}

// logURL renders u for the access log and the Observer: without the
// signature parameters stripped (what Rules left out of its key) or any
// password, clipped.
func logURL(u *url.URL, stripped []string) string { return clip(withoutParams(u, stripped)) }

// withoutParams returns u for logs without the query parameters names
// (a signature) or userinfo.
func withoutParams(u *url.URL, names []string) string {
	if len(names) == 0 {
		return u.Redacted()
	}
	c := *u
	q := c.Query()
	for _, n := range names {
		q.Del(n)
	}
	c.RawQuery = q.Encode()
	return c.Redacted()
}
