package keyrule

import (
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/resumeproxy/resumeproxy/internal/hostglob"
)

// The built-in rules. A false "signature" would merge two resources under
// one key, and a false "immutable" would serve stale bytes, so every shape
// is as tight as the service it stands for allows; a URL that misses them
// keeps its plain URL key, which costs only hits.

// Builtin describes one built-in rule, as the config lists them.
type Builtin struct {
	// Name is the rule's stable name: builtin_rules takes it, and
	// X-Cache-Key-Rule shows it.
	Name string
	// Doc says in one line what the rule matches and why that is safe.
	Doc string
}

// Builtins lists the built-in rules in the order they apply: signature
// rules first, then path rules.
func Builtins() []Builtin {
	sigs, paths := builtinRules()
	var out []Builtin
	for _, s := range sigs {
		out = append(out, Builtin{s.name, s.doc})
	}
	for _, p := range paths {
		out = append(out, Builtin{p.name, p.doc})
	}
	return out
}

// sigRule strips a family of signature parameters from the query. It
// applies only where its signature parameter is present: a bare Expires on
// an unsigned URL is an ordinary parameter, and stays in the key.
type sigRule struct {
	name, doc string
	hosts     hostglob.List // the rule's hosts; none: every host
	fold      bool          // names compare case-insensitively (S3 and GCS do)
	shapes    []sigShape
}

// sigShape is one way a family signs a URL: when its parameters are
// present (and valid agrees), the parameters in strip leave the key.
type sigShape struct {
	all   []string           // each must be present
	anyOf []string           // one of these must be present, if any are listed
	valid func([]param) bool // a further check of the query, or nil
	strip []string           // removed, every occurrence
}

// strip removes from q the parameters of each of s's shapes present in it
// (q's order is kept) and returns what is left and the names it removed.
// The host is matched last, only for a query that carries a signature:
// most URLs carry none, and a glob costs more than a scan of the query.
func (s sigRule) strip(host string, q []param) ([]param, []string) {
	var removed []string
	hostChecked := s.hosts.Len() == 0
	for _, sh := range s.shapes {
		if !sh.present(q, s.fold) {
			continue
		}
		if !hostChecked {
			if !s.hosts.Match(host) {
				return q, nil
			}
			hostChecked = true
		}
		var r []string
		q, r = removeParams(q, func(n string) bool { return hasName(sh.strip, n, s.fold) })
		removed = append(removed, r...)
	}
	return q, removed
}

// present reports whether q carries sh's signature.
func (sh sigShape) present(q []param, fold bool) bool {
	has := func(name string) bool {
		return slices.ContainsFunc(q, func(p param) bool { return sameName(p.name, name, fold) })
	}
	if !allOf(sh.all, has) || (len(sh.anyOf) > 0 && !slices.ContainsFunc(sh.anyOf, has)) {
		return false
	}
	return sh.valid == nil || sh.valid(q)
}

func allOf(names []string, has func(string) bool) bool {
	for _, n := range names {
		if !has(n) {
			return false
		}
	}
	return true
}

func hasName(names []string, n string, fold bool) bool {
	return slices.ContainsFunc(names, func(m string) bool { return sameName(n, m, fold) })
}

func sameName(a, b string, fold bool) bool {
	if fold {
		return strings.EqualFold(a, b)
	}
	return a == b
}

// queryValue returns the unescaped value of the first parameter named
// name in q, and whether there is one.
func queryValue(q []param, name string) (string, bool) {
	for _, p := range q {
		if p.name == name {
			_, v, _ := strings.Cut(p.raw, "=")
			if u, err := url.QueryUnescape(v); err == nil {
				return u, true
			}
			return v, true
		}
	}
	return "", false
}

// azureVersion reports whether the SAS version (sv) is a date, as every
// Azure Storage service version is (2020-08-04): "sig" and "sv" alone are
// names other sites use too.
func azureVersion(q []param) bool {
	v, _ := queryValue(q, "sv")
	if len(v) != len("2006-01-02") || v[4] != '-' || v[7] != '-' {
		return false
	}
	return strings.Trim(v[:4]+v[5:7]+v[8:], "0123456789") == ""
}

// pathRule names content by its path: a digest, or a file that never
// changes. check, if set, vets the submatches (a name that must repeat, a
// version that must be a release) and gives the digest. needs lists
// strings of which a matching path contains at least one: every request is
// keyed, and a substring search rules out most paths for a fraction of
// what the regexp costs (its leading (/[^/]+)* backtracks).
type pathRule struct {
	name, doc string
	needs     []string
	re        *regexp.Regexp
	check     func(m []string) (Digest, bool)
}

// match reports whether path is one of p's, with its digest if it names one.
func (p pathRule) match(path string) (Digest, bool) {
	if !slices.ContainsFunc(p.needs, func(n string) bool { return strings.Contains(path, n) }) {
		return Digest{}, false
	}
	m := p.re.FindStringSubmatch(path)
	if m == nil {
		return Digest{}, false
	}
	if p.check == nil {
		return Digest{}, true
	}
	return p.check(m)
}

// Version shapes.
const (
	// semver is a SemVer 2.0 version (npm and crates publish no other).
	semver = `[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?`
	// goVersion is a canonical Go module version as the proxy protocol
	// escapes it ("!" before a capital): queries such as "master" or
	// "latest" resolve to whatever is newest, and are left out.
	goVersion = `v[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.!-]+)?(?:\+incompatible)?`
	// ociName is an OCI distribution repository name.
	ociName = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	// prefix is any run of path segments before a shape a mirror may
	// serve under a directory of its own.
	prefix = `(?:/[^/]+)*`
)

// builtinRules returns the built-in rules, compiled, in the order they
// apply. A function, not a package variable: nothing here is shared state.
func builtinRules() ([]sigRule, []pathRule) {
	dockerCDN, _ := hostglob.Parse([]string{"*.cloudflare.docker.com"}) // a literal pattern: cannot fail
	release := regexp.MustCompile(`^` + semver + `$`)
	mavenFile := regexp.MustCompile(mavenTail)
	sigs := []sigRule{
		{name: "s3-signature", fold: true,
			doc: "S3 presigned URLs (SigV4 X-Amz-Signature, SigV2 AWSAccessKeyId+Signature+Expires): the signature is a permission, not a name",
			shapes: []sigShape{
				{all: []string{"X-Amz-Signature"}, strip: []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
					"X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"}},
				{all: []string{"AWSAccessKeyId", "Signature", "Expires"},
					strip: []string{"AWSAccessKeyId", "Signature", "Expires", "X-Amz-Security-Token"}},
			}},
		{name: "gcs-signature", fold: true,
			doc: "Google Cloud Storage signed URLs (V4 X-Goog-Signature, V2 GoogleAccessId+Signature+Expires)",
			shapes: []sigShape{
				{all: []string{"X-Goog-Signature"}, strip: []string{"X-Goog-Algorithm", "X-Goog-Credential", "X-Goog-Date",
					"X-Goog-Expires", "X-Goog-SignedHeaders", "X-Goog-Signature"}},
				{all: []string{"GoogleAccessId", "Signature", "Expires"}, strip: []string{"GoogleAccessId", "Signature", "Expires"}},
			}},
		{name: "cloudfront-signature",
			doc: "CloudFront signed URLs: Signature with Key-Pair-Id and Expires (canned) or Policy (custom)",
			shapes: []sigShape{{all: []string{"Signature", "Key-Pair-Id"}, anyOf: []string{"Expires", "Policy"},
				strip: []string{"Signature", "Key-Pair-Id", "Expires", "Policy"}}}},
		{name: "azure-sas",
			doc: "Azure Storage SAS tokens: sig with a dated sv and an expiry (se) or stored policy (si); rsc* overrides stay",
			shapes: []sigShape{{all: []string{"sig", "sv"}, anyOf: []string{"se", "si"}, valid: azureVersion,
				strip: []string{"sig", "sv", "se", "st", "si", "sp", "sr", "spr", "sip", "ss", "srt", "sdd", "ses",
					"skoid", "sktid", "skt", "ske", "sks", "skv", "saoid", "suoid", "scid", "sduoid"}}}},
		{name: "docker-cdn-verify", hosts: dockerCDN,
			doc:    "Docker Hub's blob CDN (*.cloudflare.docker.com): its verify token",
			shapes: []sigShape{{all: []string{"verify"}, strip: []string{"verify"}}}},
	}
	paths := []pathRule{
		{name: "oci-blob-digest", needs: []string{"/blobs/sha"},
			doc: "OCI registry blobs /v2/<name>/blobs/sha256:<hex>: the digest names the bytes",
			re:  regexp.MustCompile(`^/v2/` + ociName + `(?:/` + ociName + `)*/blobs/((?:sha256:[0-9a-f]{64})|(?:sha512:[0-9a-f]{128}))$`),
			check: func(m []string) (Digest, bool) {
				d, err := ParseDigest(m[1])
				return d, err == nil
			}},
		{name: "docker-cdn-digest", needs: []string{"/blobs/sha256/"},
			doc: "registry storage paths .../blobs/sha256/<2 hex>/<hex>/data (Docker Hub's CDN): the digest names the bytes",
			re:  regexp.MustCompile(`^` + prefix + `/blobs/sha256/([0-9a-f]{2})/([0-9a-f]{64})/data$`),
			check: func(m []string) (Digest, bool) {
				// The directory is the digest's first byte: another is not the layout.
				return Digest{Algorithm: "sha256", Hex: m[2]}, m[1] == m[2][:2]
			}},
		{name: "debian-by-hash", needs: []string{"/by-hash/SHA256/"},
			doc: "Debian/Ubuntu index files dists/.../by-hash/SHA256/<hex>: the digest names the bytes",
			re:  regexp.MustCompile(`^` + prefix + `/dists/(?:[^/]+/)+by-hash/SHA256/([0-9a-f]{64})$`),
			check: func(m []string) (Digest, bool) {
				return Digest{Algorithm: "sha256", Hex: m[1]}, true
			}},
		{name: "debian-pool", needs: []string{"/pool/"},
			doc: "Debian/Ubuntu pool/<component>/<x>/<source>/<name>_<version>... packages and sources: a version is never rebuilt under its name",
			re: regexp.MustCompile(`^` + prefix + `/pool/[^/]+/[^/]+/[^/]+/[^/_]+_[^/]+\.` +
				`(?:deb|udeb|dsc|diff\.gz|tar\.(?:gz|xz|bz2|lzma|zst))$`)},
		{name: "pypi-packages", needs: []string{"/packages/"},
			doc: "PyPI files /packages/<2>/<2>/<60 hex>/<file>: the directories are the file's BLAKE2b hash",
			re:  regexp.MustCompile(`^` + prefix + `/packages/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{60}/[^/]+$`)},
		{name: "npm-tarball", needs: []string{"/-/"},
			doc: "npm tarballs /[@scope/]<name>/-/<name>-<semver>.tgz: a published version can never be republished",
			re:  regexp.MustCompile(`^/(?:@[^/@]+/)?([^/@][^/]*)/-/([^/]+)\.tgz$`),
			check: func(m []string) (Digest, bool) {
				return Digest{}, versioned(m[2], m[1]+"-", release)
			}},
		{name: "go-module", needs: []string{"/@v/"},
			doc: "Go module proxy /<module>/@v/<canonical version>.zip|.mod|.info: versions are immutable (sum.golang.org); not @v/list or @latest",
			re:  regexp.MustCompile(`^(?:/[^/@]+)+/@v/` + goVersion + `\.(?:zip|mod|info)$`)},
		{name: "crates", needs: []string{"/crates/"},
			doc: "crates.io /crates/<name>/<name>-<semver>.crate and static.crates.io /crates/<name>/<semver>/download: versions are never republished",
			re:  regexp.MustCompile(`^/crates/([A-Za-z0-9_-]+)/(?:([^/]+)\.crate|(` + semver + `)/download)$`),
			check: func(m []string) (Digest, bool) {
				return Digest{}, m[3] != "" || versioned(m[2], m[1]+"-", release)
			}},
		{name: "maven-release", needs: []string{".jar", ".pom", ".war", ".ear", ".aar", ".module"}, // mavenTail's packagings
			doc: "Maven release artefacts <group>/<artifact>/<version>/<artifact>-<version>[-classifier].jar|pom|...: not -SNAPSHOT, not maven-metadata.xml",
			re:  regexp.MustCompile(`^(?:/[^/]+)+/([^/]+)/([0-9][^/]*)/([^/]+)$`),
			check: func(m []string) (Digest, bool) {
				return Digest{}, mavenRelease(m[1], m[2], m[3], mavenFile)
			}},
	}
	return sigs, paths
}

// versioned reports whether file is name followed by a version v matches
// (crates' <name>-<version>, npm's <name>-<version>).
func versioned(file, name string, v *regexp.Regexp) bool {
	rest, ok := strings.CutPrefix(file, name)
	return ok && v.MatchString(rest)
}

// mavenTail is what follows <artifact>-<version> in a release file name: an
// optional classifier, a packaging, an optional checksum or signature.
const mavenTail = `^(?:-[A-Za-z0-9_.-]+)?\.(?:jar|pom|war|ear|aar|module)(?:\.(?:asc|md5|sha1|sha256|sha512))?$`

// mavenRelease reports whether file is an artefact of a release version of
// artifact, its tail matching mavenTail: snapshots are rebuilt under the
// same name, and metadata files (maven-metadata.xml) change with every
// release.
func mavenRelease(artifact, version, file string, tail *regexp.Regexp) bool {
	if strings.Contains(strings.ToUpper(version), "SNAPSHOT") {
		return false
	}
	return versioned(file, artifact+"-"+version, tail)
}
