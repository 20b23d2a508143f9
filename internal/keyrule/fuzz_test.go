package keyrule

import (
	"net/url"
	"strings"
	"testing"

	"github.com/resumeproxy/resumeproxy/proxy/policy"
)

// FuzzKey checks that Key never panics, that the built-ins keep
// policy.CacheKey's key unless they strip a signature or name a digest,
// and that two URLs with the same
// host, path and signature parameters but different other parameters never
// share a key: stripping must never merge two resources. The other
// parameters are the fuzzer's q1 and q2 with "f" before each field, which
// no rule strips or takes for a signature, so the oracle is plain string
// inequality.
func FuzzKey(f *testing.F) {
	for _, r := range builtinRows() {
		f.Add(r.url, "a=1", "a=2", s3Query)
	}
	for _, s := range []string{"https://a.artifacts.test/files/app.tar", "https://any.test/store/" + h64, "https://dl.test/v1/x"} {
		f.Add(s, "", "&", "token=1&X-Goog-Signature=2")
	}
	f.Add("https://acct.blob.core.windows.net/c/b", "x", "x=", "sv=2022-11-02&se=1&sig=2")
	f.Add("https://d.cloudfront.net/f", "%zz", "", "Expires=1&Signature=s&Key-Pair-Id=K")
	rules, err := New(operatorSpecs(), nil)
	if err != nil {
		f.Fatalf("New: %v", err)
	}
	builtins := Default()
	f.Fuzz(func(t *testing.T, raw, q1, q2, sig string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		// A built-in that neither strips nor names a digest keeps the URL key.
		if res := builtins.Key(u); !res.Signed && !strings.HasPrefix(res.Key, DigestPrefix) && res.Key != policy.CacheKey(u) {
			t.Errorf("Key(%s) = %+v, want policy.CacheKey's key %q", raw, res, policy.CacheKey(u))
		}
		_ = rules.Key(u)
		if q1 == q2 {
			return
		}
		for _, r := range []*Rules{builtins, rules} {
			k1, k2 := r.Key(withQuery(u, q1, sig)), r.Key(withQuery(u, q2, sig))
			if k1.Key == k2.Key {
				t.Errorf("queries %q and %q (with %q) on %s share key %q", q1, q2, sig, raw, k1.Key)
			}
		}
	})
}

// withQuery returns u with the query q (each field prefixed "f") and then
// sig.
func withQuery(u *url.URL, q, sig string) *url.URL {
	v := *u
	var fields []string
	if q != "" {
		for _, p := range strings.Split(q, "&") {
			fields = append(fields, "f"+p)
		}
	}
	if sig != "" {
		fields = append(fields, sig)
	}
	v.RawQuery = strings.Join(fields, "&")
	return &v
}
