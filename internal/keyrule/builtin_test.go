package keyrule

import (
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/resumeproxy/resumeproxy/proxy/policy"
)

// Hex digests for the tables: h64 starts with "ab", as the Docker CDN
// layout's directory must.
var (
	h64  = strings.Repeat("ab12", 16)
	h128 = h64 + h64
	h60  = strings.Repeat("c", 60)
)

// row is one URL of the built-in table. of is the built-in the row
// exercises (TestBuiltinsCovered wants a match and a miss for each); rule is
// Result.Rule. key "" means policy.CacheKey(u): the key is untouched.
type row struct {
	of, url, rule, key string
	stripped           []string
	digest             string
	immutable          bool
}

const s3Query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20261201%2Fus-east-1%2Fs3%2Faws4_request" +
	"&X-Amz-Date=20261201T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=0123abcd"

var s3Names = []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"}

func builtinRows() []row {
	return []row{
		// s3-signature
		{of: "s3-signature", url: "https://bucket.s3.amazonaws.com/obj.bin?" + s3Query, rule: "s3-signature",
			key: "signed:https://bucket.s3.amazonaws.com/obj.bin", stripped: s3Names},
		{of: "s3-signature", url: "https://h.test/o?response-content-disposition=a&x-amz-signature=s&X-Amz-Security-Token=t&x-id=GetObject",
			rule: "s3-signature", key: "signed:https://h.test/o?response-content-disposition=a&x-id=GetObject",
			stripped: []string{"x-amz-signature", "X-Amz-Security-Token"}},
		{of: "s3-signature", url: "https://h.test/o?versionId=3&AWSAccessKeyId=AK&Expires=1700000000&Signature=abc%3D",
			rule: "s3-signature", key: "signed:https://h.test/o?versionId=3", stripped: []string{"AWSAccessKeyId", "Expires", "Signature"}},
		{of: "s3-signature", url: "https://h.test/o?X-Amz-Date=20261201T000000Z&X-Amz-Expires=300"}, // no signature
		{of: "s3-signature", url: "https://h.test/o?Expires=1700000000"},                            // a bare Expires is no signature
		// gcs-signature
		{of: "gcs-signature", url: "https://storage.googleapis.com/b/o?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=c" +
			"&X-Goog-Date=20261201T000000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host&x-goog-user-project=p&X-Goog-Signature=ff",
			rule: "gcs-signature", key: "signed:https://storage.googleapis.com/b/o?x-goog-user-project=p",
			stripped: []string{"X-Goog-Algorithm", "X-Goog-Credential", "X-Goog-Date", "X-Goog-Expires", "X-Goog-SignedHeaders", "X-Goog-Signature"}},
		{of: "gcs-signature", url: "https://storage.googleapis.com/b/o?GoogleAccessId=sa%40p.iam&Expires=1&Signature=s",
			rule: "gcs-signature", key: "signed:https://storage.googleapis.com/b/o", stripped: []string{"GoogleAccessId", "Expires", "Signature"}},
		{of: "gcs-signature", url: "https://storage.googleapis.com/b/o?X-Goog-Date=20261201T000000Z"},
		// cloudfront-signature
		{of: "cloudfront-signature", url: "https://d111.cloudfront.net/f.iso?Expires=1700000000&Signature=s~x&Key-Pair-Id=K2",
			rule: "cloudfront-signature", key: "signed:https://d111.cloudfront.net/f.iso", stripped: []string{"Expires", "Signature", "Key-Pair-Id"}},
		{of: "cloudfront-signature", url: "https://d111.cloudfront.net/f.iso?a=1&Policy=eyJ9&Signature=s&Key-Pair-Id=K2",
			rule: "cloudfront-signature", key: "signed:https://d111.cloudfront.net/f.iso?a=1", stripped: []string{"Policy", "Signature", "Key-Pair-Id"}},
		{of: "cloudfront-signature", url: "https://d111.cloudfront.net/f.iso?Signature=s&Expires=1"}, // no Key-Pair-Id
		{of: "cloudfront-signature", url: "https://d111.cloudfront.net/f.iso?Expires=1&Key-Pair-Id=K2"},
		{of: "cloudfront-signature", url: "https://d111.cloudfront.net/f.iso?signature=s&expires=1&key-pair-id=K2"}, // CloudFront's names have case
		// azure-sas
		{of: "azure-sas", url: "https://acct.blob.core.windows.net/c/b.vhd?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-12-01T00%3A00%3A00Z&spr=https&sig=abc%3D",
			rule: "azure-sas", key: "signed:https://acct.blob.core.windows.net/c/b.vhd", stripped: []string{"sv", "ss", "srt", "sp", "se", "spr", "sig"}},
		{of: "azure-sas", url: "https://acct.blob.core.windows.net/c/b?snapshot=2026-01-01&sv=2020-08-04&sr=b&si=p1&sig=x&rscd=attachment",
			rule: "azure-sas", key: "signed:https://acct.blob.core.windows.net/c/b?snapshot=2026-01-01&rscd=attachment",
			stripped: []string{"sv", "sr", "si", "sig"}},
		{of: "azure-sas", url: "https://site.test/img?sig=abc&sv=1&se=2"}, // sv is not a service version
		{of: "azure-sas", url: "https://acct.blob.core.windows.net/c/b?sv=2022-11-02&se=2026-12-01"},
		// docker-cdn-verify (and the digest of its path)
		{of: "docker-cdn-verify", url: "https://production.cloudflare.docker.com/registry-v2/docker/registry/v2/blobs/sha256/ab/" + h64 + "/data?verify=1700000000-Zm9v",
			rule: "docker-cdn-verify,docker-cdn-digest", key: "digest:sha256:" + h64, stripped: []string{"verify"}, digest: "sha256:" + h64, immutable: true},
		{of: "docker-cdn-verify", url: "https://example.com/download?verify=1"}, // not the CDN
		// oci-blob-digest
		{of: "oci-blob-digest", url: "https://registry-1.docker.io/v2/library/alpine/blobs/sha256:" + h64,
			rule: "oci-blob-digest", key: "digest:sha256:" + h64, digest: "sha256:" + h64, immutable: true},
		{of: "oci-blob-digest", url: "https://ghcr.io/v2/org/team/app-x/blobs/sha512:" + h128,
			rule: "oci-blob-digest", key: "digest:sha512:" + h128, digest: "sha512:" + h128, immutable: true},
		{of: "oci-blob-digest", url: "https://ghcr.io/v2/org/app/blobs/sha256:" + h64 + "?ns=docker.io", // a query the rules do not know: URL key
			rule: "oci-blob-digest", digest: "sha256:" + h64, immutable: true},
		{of: "oci-blob-digest", url: "https://ghcr.io/v2/org/app/blobs/sha256:" + strings.ToUpper(h64)},
		{of: "oci-blob-digest", url: "https://ghcr.io/v2/org/app/blobs/sha256:" + h64[1:]},
		{of: "oci-blob-digest", url: "https://ghcr.io/v2/org/app/manifests/sha256:" + h64},
		{of: "oci-blob-digest", url: "https://ghcr.io/v2/Org/app/blobs/sha256:" + h64}, // not a repository name
		{of: "oci-blob-digest", url: "https://ghcr.io/v2/org/app/blobs/md5:" + h64[:32]},
		// docker-cdn-digest
		{of: "docker-cdn-digest", url: "https://r2.test/docker/registry/v2/blobs/sha256/ab/" + h64 + "/data?" + s3Query,
			rule: "s3-signature,docker-cdn-digest", key: "digest:sha256:" + h64, stripped: s3Names, digest: "sha256:" + h64, immutable: true},
		{of: "docker-cdn-digest", url: "https://r2.test/docker/registry/v2/blobs/sha256/cd/" + h64 + "/data"}, // 2 hex not the digest's
		{of: "docker-cdn-digest", url: "https://r2.test/docker/registry/v2/blobs/sha256/ab/" + h64 + "/data/x"},
		// debian-by-hash
		{of: "debian-by-hash", url: "http://deb.debian.org/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/" + h64,
			rule: "debian-by-hash", key: "digest:sha256:" + h64, digest: "sha256:" + h64, immutable: true},
		{of: "debian-by-hash", url: "http://deb.debian.org/debian/dists/bookworm/main/binary-amd64/by-hash/MD5Sum/" + h64[:32]},
		{of: "debian-by-hash", url: "http://deb.debian.org/debian/by-hash/SHA256/" + h64}, // not under dists
		// debian-pool
		{of: "debian-pool", url: "http://deb.debian.org/debian/pool/main/x/xyz/xyz_1.0_amd64.deb", rule: "debian-pool", immutable: true},
		{of: "debian-pool", url: "http://archive.ubuntu.com/ubuntu/pool/universe/libx/libxml2/libxml2_2.9.14+dfsg.orig.tar.xz", rule: "debian-pool", immutable: true},
		{of: "debian-pool", url: "http://deb.debian.org/debian/pool/main/x/xyz/xyz_1.0-1.debian.tar.xz", rule: "debian-pool", immutable: true},
		{of: "debian-pool", url: "http://deb.debian.org/debian/pool/main/x/xyz/xyz_1.0-1.dsc", rule: "debian-pool", immutable: true},
		{of: "debian-pool", url: "http://deb.debian.org/debian/pool/main/x/xyz/xyz-udeb_1.0_amd64.udeb", rule: "debian-pool", immutable: true},
		{of: "debian-pool", url: "http://deb.debian.org/debian/pool/main/x/xyz/xyz_1.0-1.diff.gz", rule: "debian-pool", immutable: true},
		{of: "debian-pool", url: "http://deb.debian.org/debian/pool/main/x/xyz/Packages"},
		{of: "debian-pool", url: "http://deb.debian.org/debian/pool/main/x/xyz_1.0_amd64.deb"}, // not <component>/<x>/<source>/
		{of: "debian-pool", url: "http://deb.debian.org/debian/pool/main/x/xyz/xyz.deb"},       // no version
		{of: "debian-pool", url: "http://deb.debian.org/debian/dists/bookworm/Release"},
		// pypi-packages
		{of: "pypi-packages", url: "https://files.pythonhosted.org/packages/4d/5b/" + h60 + "/requests-2.31.0-py3-none-any.whl", rule: "pypi-packages", immutable: true},
		{of: "pypi-packages", url: "https://files.pythonhosted.org/packages/source/r/requests/requests-2.31.0.tar.gz"},
		{of: "pypi-packages", url: "https://pypi.org/simple/requests/"},
		// npm-tarball
		{of: "npm-tarball", url: "https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz", rule: "npm-tarball", immutable: true},
		{of: "npm-tarball", url: "https://registry.npmjs.org/@types/node/-/node-20.1.0.tgz", rule: "npm-tarball", immutable: true},
		{of: "npm-tarball", url: "https://registry.npmjs.org/foo-bar/-/foo-bar-1.0.0-beta.1.tgz", rule: "npm-tarball", immutable: true},
		{of: "npm-tarball", url: "https://registry.npmjs.org/lodash"},
		{of: "npm-tarball", url: "https://registry.npmjs.org/lodash/-/underscore-1.0.0.tgz"},
		{of: "npm-tarball", url: "https://registry.npmjs.org/lodash/-/lodash-latest.tgz"},
		{of: "npm-tarball", url: "https://mirror.test/npm/lodash/-/lodash-4.17.21.tgz"},
		// go-module
		{of: "go-module", url: "https://proxy.golang.org/golang.org/x/mod/@v/v0.14.0.zip", rule: "go-module", immutable: true},
		{of: "go-module", url: "https://proxy.golang.org/golang.org/x/mod/@v/v0.14.0.mod", rule: "go-module", immutable: true},
		{of: "go-module", url: "https://proxy.golang.org/github.com/!azure/sdk/@v/v1.0.0-!r!c1.info", rule: "go-module", immutable: true},
		{of: "go-module", url: "https://proxy.golang.org/example.com/m/@v/v0.0.0-20231201000000-abcdef123456.zip", rule: "go-module", immutable: true},
		{of: "go-module", url: "https://proxy.golang.org/example.com/m/@v/v2.0.0+incompatible.zip", rule: "go-module", immutable: true},
		{of: "go-module", url: "https://proxy.golang.org/golang.org/x/mod/@v/list"},
		{of: "go-module", url: "https://proxy.golang.org/golang.org/x/mod/@latest"},
		{of: "go-module", url: "https://proxy.golang.org/golang.org/x/mod/@v/master.info"},
		{of: "go-module", url: "https://proxy.golang.org/golang.org/x/mod/@v/v1.2.info"},
		// crates
		{of: "crates", url: "https://static.crates.io/crates/serde/serde-1.0.193.crate", rule: "crates", immutable: true},
		{of: "crates", url: "https://static.crates.io/crates/serde_json/1.0.108/download", rule: "crates", immutable: true},
		{of: "crates", url: "https://crates.io/api/v1/crates/serde/1.0.193/download"}, // a redirect, not the file
		{of: "crates", url: "https://static.crates.io/crates/serde/serde_json-1.0.0.crate"},
		{of: "crates", url: "https://static.crates.io/crates/serde/latest/download"},
		// maven-release
		{of: "maven-release", url: "https://repo1.maven.org/maven2/org/apache/commons/commons-lang3/3.14.0/commons-lang3-3.14.0.jar", rule: "maven-release", immutable: true},
		{of: "maven-release", url: "https://repo1.maven.org/maven2/org/apache/commons/commons-lang3/3.14.0/commons-lang3-3.14.0-sources.jar", rule: "maven-release", immutable: true},
		{of: "maven-release", url: "https://repo1.maven.org/maven2/org/apache/commons/commons-lang3/3.14.0/commons-lang3-3.14.0.pom.sha1", rule: "maven-release", immutable: true},
		{of: "maven-release", url: "https://repo.test/m2/org/x/app/3.15.0-SNAPSHOT/app-3.15.0-20240101.120000-1.jar"},
		{of: "maven-release", url: "https://repo1.maven.org/maven2/org/apache/commons/commons-lang3/maven-metadata.xml"},
		{of: "maven-release", url: "https://repo1.maven.org/maven2/org/apache/commons/commons-lang3/3.14.0/commons-lang3-3.14.0.html"},
		{of: "maven-release", url: "https://vendor.test/downloads/tool/1.2/tool-1.2.zip"},
	}
}

// TestBuiltins: each built-in rule on the URLs it must and must not match.
func TestBuiltins(t *testing.T) {
	rules := Default()
	for _, r := range builtinRows() {
		u, err := url.Parse(r.url)
		if err != nil {
			t.Fatalf("url.Parse(%q): %v", r.url, err)
		}
		want := Result{Key: r.key, Rule: r.rule, Signed: len(r.stripped) > 0, Stripped: r.stripped, Immutable: r.immutable}
		if want.Key == "" {
			want.Key = policy.CacheKey(u)
		}
		if r.digest != "" {
			want.Digest, _ = ParseDigest(r.digest)
		}
		if got := rules.Key(u); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Key(%s) = %+v, want %+v", r.of, r.url, got, want)
		}
	}
}

// TestBuiltinsCovered: the table has a URL each built-in matches and one it
// does not, so a new built-in cannot go untested.
func TestBuiltinsCovered(t *testing.T) {
	rows := builtinRows()
	for _, b := range Builtins() {
		hit := slices.ContainsFunc(rows, func(r row) bool { return r.of == b.Name && slices.Contains(strings.Split(r.rule, ","), b.Name) })
		miss := slices.ContainsFunc(rows, func(r row) bool { return r.of == b.Name && !strings.Contains(r.rule, b.Name) })
		if !hit || !miss {
			t.Errorf("built-in %s: table has a match %v, a miss %v; want both", b.Name, hit, miss)
		}
		if b.Doc == "" {
			t.Errorf("built-in %s has no Doc", b.Name)
		}
	}
}

// TestUntouchedKeyIsCacheKey: a URL no rule matches keeps policy.CacheKey's
// key, so caches written before keyrule stay valid.
func TestUntouchedKeyIsCacheKey(t *testing.T) {
	for _, s := range []string{
		"http://Example.COM:80/a?b=1#frag", "https://h.test:443", "https://[::1]:443/x?", "http://h.test/%2F?a=%41&a=1",
		"http://user:pw@h.test/p?Expires=1&Signature=2",
	} {
		u, _ := url.Parse(s)
		for _, r := range []*Rules{Default(), nil} {
			if got, want := r.Key(u), (Result{Key: policy.CacheKey(u)}); !reflect.DeepEqual(got, want) {
				t.Errorf("Key(%s) = %+v, want %+v", s, got, want)
			}
		}
	}
}

// TestSignedKeysShare: two signatures for one object share a key, which is
// apart from the unsigned URL's; other queries keep their entries apart.
func TestSignedKeysShare(t *testing.T) {
	key := func(s string) string {
		u, _ := url.Parse(s)
		return Default().Key(u).Key
	}
	a := key("https://b.test/o?X-Amz-Signature=1&X-Amz-Date=20261201T000000Z")
	b := key("https://b.test/o?X-Amz-Date=20261202T000000Z&X-Amz-Signature=2")
	if a != b {
		t.Errorf("two signatures: keys %q and %q, want one", a, b)
	}
	if plain := key("https://b.test/o"); plain == a {
		t.Errorf("unsigned and signed URL share key %q, want apart", a)
	}
	if c := key("https://b.test/o?versionId=2&X-Amz-Signature=1"); c == a {
		t.Errorf("another versionId shares key %q, want apart", a)
	}
}

// TestDisableBuiltin: builtin_rules turns rules off by name.
func TestDisableBuiltin(t *testing.T) {
	r, err := New(nil, map[string]bool{"s3-signature": false, "npm-tarball": true})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, s := range []string{"https://b.test/o?X-Amz-Signature=1", "https://b.test/lodash/-/lodash-1.0.0.tgz"} {
		u, _ := url.Parse(s)
		got := r.Key(u)
		if s3 := strings.Contains(s, "Amz"); got.Signed || got.Immutable == s3 {
			t.Errorf("with s3-signature off: Key(%s) = %+v", s, got)
		}
	}
}

// BenchmarkKey: every proxied request is keyed, most by no rule at all (a
// plain URL with a query), so that case must cost little beside a
// request; a URL one rule names is there for comparison.
func BenchmarkKey(b *testing.B) {
	r := Default()
	for _, c := range []struct{ name, url string }{
		{"plain", "http://127.0.0.1:8080/nostore/small.bin?i=12345"},
		{"debian-pool", "http://deb.example/debian/pool/main/b/blobwars/blobwars-data_2.00-1_all.deb"},
		{"s3-signed", "https://bucket.s3.amazonaws.com/f.iso?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc&X-Amz-Expires=60"},
	} {
		u, err := url.Parse(c.url)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.Key(u)
			}
		})
	}
}
