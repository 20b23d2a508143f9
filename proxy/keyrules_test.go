package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/internal/keyrule"
	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

// Issue 10 through a real listener: signed URLs, remembered redirects,
// digests and immutable paths, each checked by the client's sha256 and
// the bytes the origin sent.

// signedAsset serves size bytes at path, granted only to signed URLs.
func signedAsset(h *harness, path string, size int64) {
	h.origin.Set(path, testorigin.Resource{Size: size})
	h.origin.RequireSignature(path)
}

// signedURL is a new signature of path (every call makes another).
func (h *harness) signedURL(path string) string {
	return h.base + h.origin.SignedPath(path, 5*time.Minute)
}

// TestSignedURLsShareOneEntry: two signatures of one object fetch it once;
// the second is a HIT after the upstream accepted its own signature.
func TestSignedURLsShareOneEntry(t *testing.T) {
	const size = 4 * mib
	h := newHarness(t)
	signedAsset(h, "/bucket/f.iso", size)
	first := h.get(h.signedURL("/bucket/f.iso"))
	wantBody(t, "first signature", first, 200, 0, 0, size)
	wantXCache(t, "first signature", first, "MISS")
	if got := first.header.Get("X-Cache-Key-Rule"); got != "s3-signature" {
		t.Errorf("X-Cache-Key-Rule = %q, want s3-signature", got)
	}
	second := h.get(h.signedURL("/bucket/f.iso"))
	wantBody(t, "second signature", second, 200, 0, 0, size)
	wantXCache(t, "second signature", second, "HIT")
	if n := h.origin.PathBodyBytes("/bucket/f.iso"); n != size {
		t.Errorf("origin sent %d body bytes for two signatures, want %d (once)", n, size)
	}
	reqs := h.origin.Requests("/bucket/f.iso")
	if len(reqs) != 2 || reqs[1].Header.Get("If-None-Match") == "" {
		t.Errorf("origin saw %d requests (second with If-None-Match %q), want 2: the hit asks whether its own signature is accepted", len(reqs), reqs[len(reqs)-1].Header.Get("If-None-Match"))
	}
}

// TestSignedAbortResumedUnderNewSignature: a download abandoned under one
// signature is resumed under another: the origin sends the rest only.
func TestSignedAbortResumedUnderNewSignature(t *testing.T) {
	const size = 8 * mib
	h := newHarness(t)
	signedAsset(h, "/bucket/g.iso", size)
	h.abandon(h.signedURL("/bucket/g.iso"), "/bucket/g.iso", mib, 3*mib)
	r := h.get(h.signedURL("/bucket/g.iso"))
	wantBody(t, "resume under a new signature", r, 200, 0, 0, size)
	wantXCache(t, "resume under a new signature", r, "PARTIAL")
	if n := h.origin.PathBodyBytes("/bucket/g.iso"); n > size+mib {
		t.Errorf("origin sent %d body bytes, want ≤ %d: the resume refetched what was stored", n, size+mib)
	}
}

// TestForgedAndExpiredSignaturesRefused: stored bytes never go to a client
// whose own signature the upstream refuses.
func TestForgedAndExpiredSignaturesRefused(t *testing.T) {
	const size = mib
	h := newHarness(t)
	signedAsset(h, "/bucket/h.bin", size)
	u := h.signedURL("/bucket/h.bin")
	wantBody(t, "signed", h.get(u), 200, 0, 0, size)

	forged := strings.Replace(u, "X-Amz-Signature=", "X-Amz-Signature=0", 1)
	if r := h.get(forged); r.status != http.StatusForbidden || r.n >= size {
		t.Errorf("forged signature: status %d, %d bytes, want 403 and not the file", r.status, r.n)
	}
	var shift atomic.Int64
	h.origin.SetClock(func() time.Time { return time.Now().Add(time.Duration(shift.Load())) })
	shift.Store(int64(time.Hour))
	if r := h.get(u); r.status != http.StatusForbidden || r.n >= size {
		t.Errorf("expired signature: status %d, %d bytes, want 403 and not the file", r.status, r.n)
	}
	if n := h.origin.PathBodyBytes("/bucket/h.bin"); n != size {
		t.Errorf("origin sent %d body bytes, want %d", n, size)
	}
}

// TestSignatureRefreshedThroughRedirect: the signed URL a release redirect
// gave expires while the download runs; when the upstream drops, the proxy
// asks the redirect again and resumes under the fresh signature while the
// client stays connected.
func TestSignatureRefreshedThroughRedirect(t *testing.T) {
	const size = 8 * mib
	h := newHarness(t)
	var shift atomic.Int64
	h.origin.SetClock(func() time.Time { return time.Now().Add(time.Duration(shift.Load())) })
	asset := h.origin.AddRelease("/releases/v1/tool.tar.gz", testorigin.Resource{Size: size}, testorigin.Release{Lifetime: 5 * time.Minute})
	h.origin.DropAt(asset, 4*mib)

	resp := h.openBody(h.base + "/releases/v1/tool.tar.gz") // the client follows the 302
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	sum := sha256.New()
	if _, err := io.CopyN(sum, resp.Body, mib); err != nil {
		t.Fatalf("first MiB: %v", err)
	}
	shift.Store(int64(10 * time.Minute)) // the signature has expired now
	n, err := io.Copy(sum, resp.Body)
	if err != nil || n != size-mib {
		t.Fatalf("client read %d more bytes, %v; want %d, nil: the download must survive the expiry", n, err, size-mib)
	}
	if got, want := hex.EncodeToString(sum.Sum(nil)), sumOf(0, 0, size); got != want {
		t.Errorf("client sha256 %s, want %s", got, want)
	}
	if h.logs.count("signature refreshed through its redirect") != 1 {
		t.Error("no log line says the signature was refreshed")
	}
	if n := h.origin.PathBodyBytes(asset); n > size+mib {
		t.Errorf("origin sent %d body bytes, want ≤ %d", n, size+mib)
	}
}

// ociData is a blob for the registry tests.
func ociData(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// TestDigestSharedAcrossReposAndHosts: one blob under two repositories,
// pulled through two host names, is fetched from the blob store once.
func TestDigestSharedAcrossReposAndHosts(t *testing.T) {
	data := ociData(3*mib + 123)
	h := newHarness(t)
	pathA, store, digest := h.origin.AddOCIBlob(testorigin.OCIBlob{Repo: "team/a", Data: data})
	pathB, _, _ := h.origin.AddOCIBlob(testorigin.OCIBlob{Repo: "team/b", Data: data})
	other := strings.Replace(h.base, "127.0.0.1", "localhost", 1)
	for i, u := range []struct{ url, repo string }{{h.base + pathA, "team/a"}, {other + pathB, "team/b"}, {h.base + pathB, "team/b"}} {
		r := h.get(u.url, "Authorization: Bearer "+h.origin.OCIToken(u.repo))
		if r.status != 200 || r.n != int64(len(data)) || r.sum != sha256Hex(data) || r.err != nil {
			t.Fatalf("pull %d (%s): status %d, %d bytes, sha %s, err %v; want the blob", i, u.url, r.status, r.n, r.sum, r.err)
		}
	}
	if n := h.origin.PathBodyBytes(store); n != int64(len(data)) {
		t.Errorf("blob store sent %d body bytes for three pulls, want %d (once)", n, len(data))
	}
	forged := h.get(h.base+pathA, "Authorization: Bearer forged")
	if forged.status != http.StatusUnauthorized || forged.sum == sha256Hex(data) {
		t.Errorf("forged token: status %d, sha %s; want the registry's 401, not the blob", forged.status, forged.sum)
	}
	if anon := h.get(h.base + pathA); anon.status != http.StatusUnauthorized {
		t.Errorf("no token: status %d; want the registry's 401 (the blob came through a signed URL)", anon.status)
	}
	if e, err := h.store.Get(keyrule.DigestPrefix + digest); err != nil || e == nil {
		t.Errorf("no entry under %s: %v", keyrule.DigestPrefix+digest, err)
	} else {
		e.Release()
	}
}

// TestCorruptDigestNeverCompletes: a blob store serving a flipped byte
// never gives a client the complete wrong file, and nothing of it is kept.
func TestCorruptDigestNeverCompletes(t *testing.T) {
	data := ociData(2 * mib)
	h := newHarness(t)
	path, store, digest := h.origin.AddOCIBlob(testorigin.OCIBlob{Repo: "x/y", Data: data, Corrupt: true, CorruptAt: 100})
	for i := range 2 {
		r := h.get(h.base+path, "Authorization: Bearer "+h.origin.OCIToken("x/y"))
		if r.err == nil || r.n >= int64(len(data)) {
			t.Errorf("pull %d: %d bytes, err %v; want a cut before the last byte", i, r.n, r.err)
		}
	}
	if n := h.origin.PathBodyBytes(store); n != 2*int64(len(data)) {
		t.Errorf("blob store sent %d bytes, want %d: a corrupt blob is never served from the cache", n, 2*len(data))
	}
	if e, _ := h.store.Get(keyrule.DigestPrefix + digest); e != nil {
		e.Release()
		t.Error("the corrupt blob is still stored")
	}
	if h.logs.count("does not match its digest") == 0 {
		t.Error("no log line names the digest mismatch")
	}
}

// TestPoolFileWithoutValidators: a mirror's pool file, sent without any
// validator, is stored, and a download abandoned at 40% is resumed; a
// changed file under the same name is never mixed with the stored bytes.
func TestPoolFileWithoutValidators(t *testing.T) {
	const size = 20 * mib
	h := newHarness(t)
	path := h.origin.AddDebianPool("hello", "2.10-3", size)
	u := h.base + path
	h.abandon(u, path, mib, 8*mib)
	r := h.get(u)
	wantBody(t, "resume", r, 200, 0, 0, size)
	wantXCache(t, "resume", r, "PARTIAL")
	if got := r.header.Get("X-Cache-Key-Rule"); got != "debian-pool" {
		t.Errorf("X-Cache-Key-Rule = %q, want debian-pool", got)
	}
	if n := h.origin.PathBodyBytes(path); n > size+8*mib {
		t.Errorf("origin sent %d body bytes, want ≤ size + 8 MiB (%d)", n, size+8*mib)
	}
	wantXCache(t, "again", h.get(u), "HIT")

	changed := h.origin.AddDebianPool("world", "1.0", size)
	h.abandon(h.base+changed, changed, mib, 8*mib)
	h.origin.SetVersion(changed, 1)
	r = h.get(h.base + changed)
	wantBody(t, "changed file", r, 200, 1, 0, size)
	if h.logs.count("differ from the stored ones") == 0 {
		t.Error("no log line says the overlap found a changed file")
	}
}

// TestRedirectFromDigestKeysTarget: a URL reached by a redirect from a URL
// that names a digest is keyed by that digest, whatever its own path says,
// so a second repository's redirect to another store path is a hit.
func TestRedirectFromDigestKeysTarget(t *testing.T) {
	data := ociData(mib + 17)
	digest := "sha256:" + sha256Hex(data)
	h := newHarness(t)
	assetA := h.origin.AddRelease("/v2/one/blobs/"+digest, testorigin.Resource{Data: data}, testorigin.Release{})
	assetB := h.origin.AddRelease("/v2/two/blobs/"+digest, testorigin.Resource{Data: data}, testorigin.Release{})
	for i, path := range []string{"/v2/one/blobs/" + digest, "/v2/two/blobs/" + digest} {
		r := h.get(h.base + path)
		if r.status != 200 || r.sum != sha256Hex(data) || r.err != nil {
			t.Fatalf("pull %d: status %d, sha %s, err %v; want the blob", i, r.status, r.sum, r.err)
		}
		if got := r.header.Get("X-Cache-Key-Rule"); got != "s3-signature,redirect-from-digest" {
			t.Errorf("pull %d: X-Cache-Key-Rule = %q, want s3-signature,redirect-from-digest", i, got)
		}
	}
	if a, b := h.origin.PathBodyBytes(assetA), h.origin.PathBodyBytes(assetB); a != int64(len(data)) || b > 1 {
		t.Errorf("store paths sent %d and %d body bytes, want %d and at most 1 (the second is the same digest)", a, b, len(data))
	}
}

// TestAccessLogWithoutSignature: the access log names a signed URL without
// its signature.
func TestAccessLogWithoutSignature(t *testing.T) {
	h := newHarness(t)
	signedAsset(h, "/bucket/log.bin", 1000)
	wantBody(t, "signed", h.get(h.signedURL("/bucket/log.bin")), 200, 0, 0, 1000)
	// The access line is written once the exchange ends, just after the
	// client has its last byte.
	for deadline := time.Now().Add(10 * time.Second); h.logs.count("msg=request") == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no access log line after 10s")
		}
	}
	if n := h.logs.count("X-Amz-Signature"); n != 0 {
		t.Errorf("%d log lines carry the signature", n)
	}
	if h.logs.count("/bucket/log.bin") == 0 {
		t.Error("no log line names the download")
	}
}
