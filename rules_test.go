package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/resumeproxy/resumeproxy/internal/keyrule"
)

// rulesDigest is a sha256 in hex for the digest paths below.
var rulesDigest = strings.Repeat("ab12", 16)

// TestRulesTestBuiltins: `rules test` names each built-in rule on a URL it
// matches, with the key and digest it gives.
func TestRulesTestBuiltins(t *testing.T) {
	cases := []struct{ rule, url, key string }{
		{"s3-signature", "https://b.s3.amazonaws.com/o?X-Amz-Date=1&X-Amz-Signature=2", "signed:https://b.s3.amazonaws.com/o"},
		{"gcs-signature", "https://storage.googleapis.com/b/o?X-Goog-Signature=2", "signed:https://storage.googleapis.com/b/o"},
		{"cloudfront-signature", "https://d.cloudfront.net/f?Expires=1&Signature=s&Key-Pair-Id=K", "signed:https://d.cloudfront.net/f"},
		{"azure-sas", "https://a.blob.core.windows.net/c/b?sv=2022-11-02&se=1&sig=2", "signed:https://a.blob.core.windows.net/c/b"},
		{"docker-cdn-verify", "https://production.cloudflare.docker.com/x?verify=1", "signed:https://production.cloudflare.docker.com/x"},
		{"oci-blob-digest", "https://ghcr.io/v2/o/a/blobs/sha256:" + rulesDigest, "digest:sha256:" + rulesDigest},
		{"docker-cdn-digest", "https://r2.test/docker/registry/v2/blobs/sha256/ab/" + rulesDigest + "/data", "digest:sha256:" + rulesDigest},
		{"debian-by-hash", "http://deb.test/debian/dists/stable/main/by-hash/SHA256/" + rulesDigest, "digest:sha256:" + rulesDigest},
		{"debian-pool", "http://deb.test/debian/pool/main/x/xyz/xyz_1.0_amd64.deb", "http://deb.test/debian/pool/main/x/xyz/xyz_1.0_amd64.deb"},
		{"pypi-packages", "https://files.pythonhosted.org/packages/4d/5b/" + strings.Repeat("c", 60) + "/a-1.0.whl", ""},
		{"npm-tarball", "https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz", "https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz"},
		{"go-module", "https://proxy.golang.org/golang.org/x/mod/@v/v0.14.0.zip", ""},
		{"crates", "https://static.crates.io/crates/serde/serde-1.0.193.crate", ""},
		{"maven-release", "https://repo1.maven.org/maven2/org/x/app/1.0/app-1.0.jar", ""},
	}
	for _, b := range keyrule.Builtins() {
		if !slices.ContainsFunc(cases, func(c struct{ rule, url, key string }) bool { return c.rule == b.Name }) {
			t.Errorf("built-in %s has no case here", b.Name)
		}
	}
	for _, c := range cases {
		var out, errOut strings.Builder
		if err := runRules([]string{"test", c.url}, &out, &errOut); err != nil {
			t.Fatalf("rules test %s: %v\n%s", c.url, err, errOut.String())
		}
		got := out.String()
		if !strings.Contains(got, "\nrule:      "+c.rule+"\n") && !strings.Contains(got, "\nrule:      "+c.rule+",") {
			t.Errorf("rules test %s printed\n%s\nwant rule %s", c.url, got, c.rule)
		}
		if c.key != "" && !strings.Contains(got, "\nkey:       "+c.key+"\n") {
			t.Errorf("rules test %s printed\n%s\nwant key %s", c.url, got, c.key)
		}
		if digest := strings.HasPrefix(c.key, "digest:"); digest != strings.Contains(got, "digest:    sha256:"+rulesDigest) {
			t.Errorf("rules test %s printed\n%s\nwant the digest only for a digest key", c.url, got)
		}
	}
}

// TestRulesTestConfig: --config applies operator rules and disables
// built-ins, before or after the URL.
func TestRulesTestConfig(t *testing.T) {
	cfg := writeFile(t, "c.yaml", "builtin_rules:\n  npm-tarball: false\nrules:\n  - name: cas\n    path: '/cas/([0-9a-f]{64})'\n    digest: 'sha256:$1'\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"test", "--config", cfg, "https://x.test/cas/" + rulesDigest}, "key:       digest:sha256:" + rulesDigest + "\nrule:      cas\n"},
		{[]string{"test", "https://x.test/cas/" + rulesDigest, "--config", cfg}, "rule:      cas\n"},
		{[]string{"--config", cfg, "test", "https://registry.npmjs.org/a/-/a-1.0.0.tgz"}, "rule:      none\n"},
		{[]string{"test", "https://registry.npmjs.org/a/-/a-1.0.0.tgz"}, "rule:      npm-tarball\n"},
	} {
		var out, errOut strings.Builder
		if err := runRules(c.args, &out, &errOut); err != nil || !strings.Contains(out.String(), c.want) {
			t.Errorf("rules %q = %v, printed\n%s\nwant %q", c.args, err, out.String(), c.want)
		}
	}
}

// TestRulesTestErrors: usage mistakes, bad URLs and bad rules exit 2 with
// a message that says what is wrong; --help exits 0.
func TestRulesTestErrors(t *testing.T) {
	bad := writeFile(t, "bad.yaml", "rules:\n  - name: x\n    path: '(['\n")
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--help"}, 0, ""},
		{[]string{"test", "--help"}, 0, ""},
		{nil, 2, "usage: resumeproxy rules test"},
		{[]string{"check", "https://x.test/"}, 2, "usage: resumeproxy rules test"},
		{[]string{"test"}, 2, "want one URL"},
		{[]string{"test", "https://a.test/", "https://b.test/"}, 2, "want one URL"},
		{[]string{"test", "%zz"}, 2, "invalid URL escape"},
		{[]string{"test", "ftp://x.test/f"}, 2, "http:// or https://"},
		{[]string{"test", "/just/a/path"}, 2, "http:// or https://"},
		{[]string{"test", "http:///nohost"}, 2, "no host"},
		{[]string{"test", "--config", bad, "https://x.test/"}, 2, "rules[0].path"},
		{[]string{"test", "--config", filepath.Join(t.TempDir(), "absent.yaml"), "https://x.test/"}, 2, "absent.yaml"},
	} {
		var out, errOut strings.Builder
		err := runRules(c.args, &out, &errOut)
		if got := exitCode(err); got != c.code || (c.msg != "" && !strings.Contains(err.Error(), c.msg)) {
			t.Errorf("rules %q = %v (exit %d), want exit %d and a message with %q", c.args, err, got, c.code, c.msg)
		}
	}
}

// TestRulesDispatch: run hands "rules" to the subcommand.
func TestRulesDispatch(t *testing.T) {
	var out strings.Builder
	if err := run([]string{"rules", "test", "https://registry.npmjs.org/a/-/a-1.0.0.tgz"}, &out, &out); err != nil || !strings.Contains(out.String(), "npm-tarball") {
		t.Errorf("run(rules test ...) = %v, printed %s", err, out.String())
	}
}
