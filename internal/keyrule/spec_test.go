package keyrule

import (
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/resumeproxy/resumeproxy/proxy/policy"
)

// operatorSpecs are the operator rules of TestOperatorRules and FuzzKey.
func operatorSpecs() []Spec {
	return []Spec{
		{Name: "exempt", Hosts: []string{"mutable.test"}},
		{Name: "artifacts", Hosts: []string{"*.artifacts.test"}, Path: `/files/(?P<file>[^/]+)`,
			StripQuery: []string{"token", "X-Goog-*"}, Key: "artifacts/${file}"},
		{Name: "blobs", Path: `/store/([0-9a-fA-F]{64})`, Digest: "sha256:$1"},
		{Name: "releases", Hosts: []string{"dl.test"}, Path: `/v[0-9.]+/.*`, Immutable: true},
	}
}

func TestOperatorRules(t *testing.T) {
	r, err := New(operatorSpecs(), nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, c := range []struct {
		url  string
		want Result // Key "" means policy.CacheKey(u)
	}{
		// An operator rule that matches decides alone: no built-in strips here.
		{"https://mutable.test/pool/main/x/xyz/xyz_1.0_amd64.deb?X-Amz-Signature=1", Result{Rule: "exempt"}},
		{"https://a.artifacts.test/files/app.tar?token=abc&v=2&x-goog-date=1", Result{Key: "signed:key:artifacts/app.tar?v=2",
			Rule: "artifacts", Signed: true, Stripped: []string{"token", "x-goog-date"}}},
		{"https://b.artifacts.test/files/app.tar?TOKEN=x", Result{Key: "signed:key:artifacts/app.tar",
			Rule: "artifacts", Signed: true, Stripped: []string{"TOKEN"}}},
		{"https://b.artifacts.test/files/app.tar", Result{Key: "key:artifacts/app.tar", Rule: "artifacts"}},
		{"https://b.artifacts.test/files/a/b", Result{}}, // path does not match: nothing applies
		{"https://any.test/store/" + strings.ToUpper(h64), Result{Key: "digest:sha256:" + h64, Rule: "blobs",
			Digest: Digest{"sha256", h64}, Immutable: true}},
		{"https://any.test/store/" + h64 + "?a=1", Result{Rule: "blobs", Digest: Digest{"sha256", h64}, Immutable: true}},
		{"https://dl.test/v1.2/tool.zip", Result{Rule: "releases", Immutable: true}},
		{"https://dl.test/latest/tool.zip", Result{}},
		// No operator rule matches: the built-ins apply.
		{"https://dl.test/lodash/-/lodash-1.0.0.tgz", Result{Rule: "npm-tarball", Immutable: true}},
	} {
		u, _ := url.Parse(c.url)
		if c.want.Key == "" {
			c.want.Key = policy.CacheKey(u)
		}
		if got := r.Key(u); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Key(%s) = %+v, want %+v", c.url, got, c.want)
		}
	}
}

// TestNewErrors: every mistake is refused at load, naming the key.
func TestNewErrors(t *testing.T) {
	ok := Spec{Name: "ok", Path: "/(x)"}
	for _, c := range []struct {
		spec Spec
		key  string
	}{
		{Spec{}, "rules[1].name: "},
		{Spec{Name: "a b"}, "rules[1].name: "},
		{Spec{Name: "ok"}, "rules[1].name: "}, // taken by rules[0]
		{Spec{Name: "s3-signature"}, "rules[1].name: "},
		{Spec{Name: "r", Hosts: []string{"https://x/"}}, "rules[1].hosts: "},
		{Spec{Name: "r", Path: "(["}, "rules[1].path: "},
		{Spec{Name: "r", StripQuery: []string{""}}, "rules[1].strip_query: "},
		{Spec{Name: "r", StripQuery: []string{"a*b"}}, "rules[1].strip_query: "},
		{Spec{Name: "r", Path: "/(x)", Key: "$2"}, "rules[1].key: "},
		{Spec{Name: "r", Path: "/(x)", Key: "$1x"}, "rules[1].key: "},
		{Spec{Name: "r", Path: "/(x)", Key: "a$"}, "rules[1].key: "},
		{Spec{Name: "r", Path: "/(x)", Key: "${nope}"}, "rules[1].key: "},
		{Spec{Name: "r", Path: "/(x)", Key: "${1"}, "rules[1].key: "},
		{Spec{Name: "r", Path: "/(x)", Key: "k", Digest: "sha256:$1"}, "rules[1].key: "},
		{Spec{Name: "r", Path: "/(x)", Digest: "md5:$1"}, "rules[1].digest: "},
		{Spec{Name: "r", Path: "/(x)", Digest: "sha256:$3"}, "rules[1].digest: "},
	} {
		_, err := New([]Spec{ok, c.spec}, nil)
		if err == nil || !strings.HasPrefix(err.Error(), c.key) || strings.Contains(err.Error(), "\n") {
			t.Errorf("New(%+v) error = %v, want one naming %s", c.spec, err, c.key)
		}
	}
	if _, err := New([]Spec{ok, {Name: "r", Path: "/(x)", Key: "$$1-${1}x-$1"}}, nil); err != nil {
		t.Errorf("New with $$ and ${1}: %v, want nil", err)
	}
	_, err := New(nil, map[string]bool{"s4-signature": false, "s3-signature": false})
	if err == nil || err.Error() != "builtin_rules.s4-signature: no built-in rule has this name (see config.example.yaml)" {
		t.Errorf("New with an unknown built-in: %v, want one error naming builtin_rules.s4-signature", err)
	}
}
