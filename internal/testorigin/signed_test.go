package testorigin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/internal/keyrule"
)

// noRedirects returns a client that hands redirects back instead of
// following them.
func noRedirects(t *testing.T) *http.Client {
	c := client(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// testClock is a clock a test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// redirect GETs url, wants status and a Location, and returns it
// resolved against url.
func redirect(t *testing.T, c *http.Client, rawURL string, status int, hdr ...string) string {
	t.Helper()
	resp, _ := get(t, c, rawURL, hdr...)
	loc, err := resp.Location()
	if resp.StatusCode != status || err != nil {
		t.Fatalf("GET %s = %d, Location %v (%v); want %d with a Location", rawURL, resp.StatusCode, loc, err, status)
	}
	return loc.String()
}

// keyOf is the cache key keyrule's built-ins give rawURL.
func keyOf(t *testing.T, rawURL string) keyrule.Result {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return keyrule.Default().Key(u)
}

// TestAddRelease: the stable URL redirects to a new signed URL each time;
// the signed URL serves the asset, and all of them share one cache key;
// a missing or forged signature gets 403 and no content.
func TestAddRelease(t *testing.T) {
	o, c := New(t), noRedirects(t)
	asset := o.AddRelease("/o/r/releases/download/v1/tool.tar.gz", Resource{Size: testSize}, Release{})
	loc1 := redirect(t, c, o.URL+"/o/r/releases/download/v1/tool.tar.gz", http.StatusFound)
	loc2 := redirect(t, c, o.URL+"/o/r/releases/download/v1/tool.tar.gz", http.StatusFound)
	if loc1 == loc2 || !strings.HasPrefix(loc1, o.URL+asset+"?") || !strings.Contains(loc1, "X-Amz-Signature=") {
		t.Errorf("redirects to %s and %s, want two signed URLs of %s", loc1, loc2, asset)
	}
	if k1, k2 := keyOf(t, loc1), keyOf(t, loc2); k1.Key != k2.Key || !k1.Signed {
		t.Errorf("keyrule keys %+v and %+v, want one signed key", k1, k2)
	}
	resp, body := get(t, c, loc1)
	if resp.StatusCode != http.StatusOK || Sum(0, testSize) != sha256Hex(body) || o.PathBodyBytes(asset) != testSize {
		t.Errorf("GET signed URL = %d, %d bytes (origin counted %d), want 200 and the asset", resp.StatusCode, len(body), o.PathBodyBytes(asset))
	}
	forged := strings.Replace(loc2, "X-Amz-Signature=", "X-Amz-Signature=0", 1)
	for _, u := range []string{o.URL + asset, forged, strings.Replace(loc2, "X-Amz-Expires=300", "X-Amz-Expires=3000", 1)} {
		if resp, _ := get(t, c, u); resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s = %d, want 403", u, resp.StatusCode)
		}
	}
	if got := o.PathBodyBytes(asset); got != testSize {
		t.Errorf("after refusals the origin counted %d bytes, want %d", got, testSize)
	}
}

// TestReleaseExpiresMidDownload: a signature that expires while its
// download runs lets the download finish, refuses the resume, and the
// redirect hands out a URL that resumes.
func TestReleaseExpiresMidDownload(t *testing.T) {
	o, c := New(t), noRedirects(t)
	clock := &testClock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	o.SetClock(clock.Now)
	const stable = "/dl/app.iso"
	asset := o.AddRelease(stable, Resource{Size: testSize}, Release{Lifetime: time.Minute})
	o.DropAt(asset, testSize/2)
	loc := redirect(t, c, o.URL+stable, http.StatusFound)
	if _, body, err := fetch(t, c, http.MethodGet, loc); err == nil || len(body) != testSize/2 {
		t.Fatalf("first GET read %d bytes, %v; want a cut at %d", len(body), err, testSize/2)
	}
	clock.Add(time.Minute - time.Second)
	rng := "bytes=" + strconv.Itoa(testSize/2) + "-"
	if resp, _ := get(t, c, loc, "Range", rng); resp.StatusCode != http.StatusPartialContent {
		t.Errorf("resume within the lifetime = %d, want 206", resp.StatusCode)
	}
	clock.Add(2 * time.Second)
	if resp, _ := get(t, c, loc, "Range", rng); resp.StatusCode != http.StatusForbidden {
		t.Errorf("resume after the lifetime = %d, want 403", resp.StatusCode)
	}
	fresh := redirect(t, c, o.URL+stable, http.StatusFound)
	resp, body := get(t, c, fresh, "Range", rng)
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, bytesOf(0, testSize/2, testSize-testSize/2)) {
		t.Errorf("resume with a fresh URL = %d, %d bytes; want 206 and the rest", resp.StatusCode, len(body))
	}
}

// TestReleaseOtherHost: Release.Host makes the Location absolute, on that host.
func TestReleaseOtherHost(t *testing.T) {
	o, c := New(t), noRedirects(t)
	asset := o.AddRelease("/r", Resource{Size: 10}, Release{Host: "assets.origin.test:8443"})
	if loc := redirect(t, c, o.URL+"/r", http.StatusFound); !strings.HasPrefix(loc, "http://assets.origin.test:8443"+asset+"?") {
		t.Errorf("Location = %s, want http://assets.origin.test:8443%s?...", loc, asset)
	}
}

// TestAddOCIBlob: no token, 401 and a challenge; the token endpoint's
// token, 307 to the signed store path, which serves the blob by ranges;
// two repositories share the store path, and keyrule gives every URL of
// the blob its digest key.
func TestAddOCIBlob(t *testing.T) {
	o, c := New(t), noRedirects(t)
	data := dataOf(testSize)
	blob, store, digest := o.AddOCIBlob(OCIBlob{Repo: "library/demo", Data: data})
	blob2, store2, _ := o.AddOCIBlob(OCIBlob{Repo: "other/demo", Data: data})
	sum := sha256.Sum256(data)
	if want := "sha256:" + hex.EncodeToString(sum[:]); digest != want || blob != "/v2/library/demo/blobs/"+want || store != store2 {
		t.Errorf("AddOCIBlob = %s, %s, %s (second store %s); want the digest %s and one store path", blob, store, digest, store2, want)
	}
	resp, _ := get(t, c, o.URL+blob)
	ch := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(ch, `Bearer realm="`+o.URL+`/token"`) || !strings.Contains(ch, `scope="repository:library/demo:pull"`) {
		t.Fatalf("GET without token = %d, WWW-Authenticate %q; want 401 and a bearer challenge", resp.StatusCode, ch)
	}
	_, body := get(t, c, o.URL+"/token?service=testorigin&scope=repository:library/demo:pull")
	var tok struct{ Token string }
	if err := json.Unmarshal(body, &tok); err != nil || tok.Token != o.OCIToken("library/demo") {
		t.Fatalf("token endpoint = %s (%v), want the repository's token", body, err)
	}
	if resp, _ := get(t, c, o.URL+blob2, "Authorization", "Bearer "+tok.Token); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET of another repository's blob with this token = %d, want 401", resp.StatusCode)
	}
	loc := redirect(t, c, o.URL+blob, http.StatusTemporaryRedirect, "Authorization", "Bearer "+tok.Token)
	if !strings.HasPrefix(loc, o.URL+store+"?") {
		t.Errorf("Location = %s, want the signed store path %s", loc, store)
	}
	resp, part := get(t, c, loc, "Range", "bytes=1000-")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, data[1000:]) {
		t.Errorf("GET store with Range = %d, %d bytes; want 206 and the blob from 1000", resp.StatusCode, len(part))
	}
	if resp, _ := get(t, c, o.URL+store); resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET store unsigned = %d, want 403", resp.StatusCode)
	}
	for _, u := range []string{o.URL + blob, o.URL + blob2, loc} {
		if k := keyOf(t, u); k.Key != "digest:"+digest || !k.Immutable {
			t.Errorf("keyrule on %s = %+v, want digest key %s", u, k, digest)
		}
	}
	if _, body := get(t, c, o.URL+"/token?scope=nope"); !strings.Contains(string(body), "scope=repository") {
		t.Errorf("token endpoint without a scope = %s, want a refusal naming the scope", body)
	}
}

// TestOCIBlobCorruptAndCDNHost: Corrupt serves one byte flipped, under a
// digest of the good blob; CDNHost puts the store on another host.
func TestOCIBlobCorruptAndCDNHost(t *testing.T) {
	o, c := New(t), noRedirects(t)
	data := dataOf(testSize)
	blob, _, _ := o.AddOCIBlob(OCIBlob{Repo: "r", Data: data, Corrupt: true, CorruptAt: 12345, CDNHost: "cdn.origin.test"})
	loc := redirect(t, c, o.URL+blob, http.StatusTemporaryRedirect, "Authorization", "Bearer "+o.OCIToken("r"))
	u, _ := url.Parse(loc)
	if u.Host != "cdn.origin.test" {
		t.Errorf("Location = %s, want host cdn.origin.test", loc)
	}
	_, body := get(t, c, o.URL+u.RequestURI())
	var diff []int
	for i := range body {
		if body[i] != data[i] {
			diff = append(diff, i)
		}
	}
	if len(body) != len(data) || len(diff) != 1 || diff[0] != 12345 {
		t.Errorf("corrupt blob: %d bytes, differing at %v; want %d bytes differing at [12345]", len(body), diff, len(data))
	}
}

// TestAddDebianPool: a pool file with no validators and no Cache-Control
// but ranges; SetVersion replaces its bytes; keyrule calls it immutable.
func TestAddDebianPool(t *testing.T) {
	o, c := New(t), client(t)
	path := o.AddDebianPool("xyz", "1.0", testSize)
	if path != "/debian/pool/main/x/xyz/xyz_1.0_amd64.deb" || DebianPoolPath("libfoo", "2") != "/debian/pool/main/libf/libfoo/libfoo_2_amd64.deb" {
		t.Errorf("AddDebianPool = %s, DebianPoolPath(libfoo, 2) = %s", path, DebianPoolPath("libfoo", "2"))
	}
	resp, body := get(t, c, o.URL+path)
	h := resp.Header
	if resp.StatusCode != http.StatusOK || h.Get("ETag")+h.Get("Last-Modified")+h.Get("Cache-Control") != "" || h.Get("Accept-Ranges") != "bytes" ||
		sha256Hex(body) != Sum(0, testSize) {
		t.Errorf("GET %s = %d, %v; want 200, no validators, Accept-Ranges and the content", path, resp.StatusCode, h)
	}
	resp, part := get(t, c, o.URL+path, "Range", "bytes=100-199")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, bytesOf(0, 100, 100)) {
		t.Errorf("GET with Range = %d, %d bytes; want 206 and bytes 100-199", resp.StatusCode, len(part))
	}
	o.SetVersion(path, 1)
	resp, body = get(t, c, o.URL+path)
	if sha256Hex(body) != Sum(1, testSize) || resp.Header.Get("ETag") != "" {
		t.Errorf("after SetVersion: ETag %q, content of version 0 %v; want other bytes, still no ETag", resp.Header.Get("ETag"), sha256Hex(body) == Sum(0, testSize))
	}
	if k := keyOf(t, o.URL+path); !k.Immutable || k.Rule != "debian-pool" {
		t.Errorf("keyrule on %s = %+v, want debian-pool, immutable", path, k)
	}
}
