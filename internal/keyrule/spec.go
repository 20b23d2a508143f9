package keyrule

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/resumeproxy/resumeproxy/internal/hostglob"
)

// Spec is one operator rule, as the config's rules list holds it. A URL
// matches when its host matches Hosts and its path matches Path; the first
// operator rule that matches decides the key alone (no built-in applies),
// so a rule without actions exempts its URLs from the built-ins.
type Spec struct {
	// Name identifies the rule in X-Cache-Key-Rule and the logs: letters,
	// digits, '.', '_' and '-', unique, not a built-in's. Required.
	Name string `yaml:"name"`
	// Hosts are host globs as mitm.hosts takes them ("*.example.com").
	// Default none: every host.
	Hosts []string `yaml:"hosts"`
	// Path is a Go regular expression (RE2 syntax) that must match the
	// whole path as sent, percent-escapes kept (it is anchored: ^(?:Path)$).
	// Its groups feed Key and Digest. Default "": every path.
	Path string `yaml:"path"`
	// StripQuery names query parameters to leave out of the key, compared
	// case-insensitively; a trailing '*' makes a prefix ("X-Goog-*").
	// Stripping anything marks the request signed: stored bytes are served
	// only after the upstream accepted its URL. Other parameters stay in
	// the key, in order. Default none.
	StripQuery []string `yaml:"strip_query"`
	// Key, when set, is the key, from Path's groups ($1, ${name}; $$ for
	// a dollar) instead of the URL's; the query that is not stripped is
	// appended. Keys from templates have a namespace of their own
	// ("key:..."), so they never meet a URL's key. Default "".
	Key string `yaml:"key"`
	// Digest, when set, names the content from Path's groups: "sha256:$1"
	// or "sha512:$1". The rule matches only where it expands to a valid
	// digest. The digest is then the key (when no query is left), shared
	// with every URL naming it, and the entry is immutable. Not with Key.
	// Default "".
	Digest string `yaml:"digest"`
	// Immutable marks the files as never changing: storable and resumable
	// without validators, never revalidated. Default false.
	Immutable bool `yaml:"immutable"`
}

// opRule is a compiled Spec.
type opRule struct {
	name      string
	hosts     hostglob.List
	re        *regexp.Regexp
	strip     []string // lower case; a trailing '*' is a prefix
	key       string
	digest    string
	immutable bool
}

// New compiles the operator's rules and selects the built-ins: builtins
// maps a built-in's name to false to turn it off (true or absent: on). Its
// errors name the config key at fault ("rules[2].path: ...",
// "builtin_rules.s4-signature: ..."), one per line.
func New(specs []Spec, builtins map[string]bool) (*Rules, error) {
	r := &Rules{}
	sigs, paths := builtinRules()
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(builtins)) {
		if !isBuiltin(name, sigs, paths) {
			errs = append(errs, fmt.Errorf("builtin_rules.%s: no built-in rule has this name (see config.example.yaml)", name))
		}
	}
	off := func(name string) bool { on, set := builtins[name]; return set && !on }
	r.sigs = slices.DeleteFunc(slices.Clone(sigs), func(s sigRule) bool { return off(s.name) })
	r.paths = slices.DeleteFunc(slices.Clone(paths), func(p pathRule) bool { return off(p.name) })
	seen := make(map[string]bool)
	for i, s := range specs {
		o, err := s.compile(seen, sigs, paths)
		if err != nil {
			errs = append(errs, fmt.Errorf("rules[%d].%w", i, err))
			continue
		}
		r.ops = append(r.ops, o)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// Default returns every built-in rule and no operator rule.
func Default() *Rules {
	r, _ := New(nil, nil) // no input to refuse
	return r
}

func isBuiltin(name string, sigs []sigRule, paths []pathRule) bool {
	return slices.ContainsFunc(sigs, func(s sigRule) bool { return s.name == name }) ||
		slices.ContainsFunc(paths, func(p pathRule) bool { return p.name == name })
}

// compile checks s and compiles it. Its errors start with the field at
// fault ("path: ..."); seen holds the names taken so far.
func (s Spec) compile(seen map[string]bool, sigs []sigRule, paths []pathRule) (opRule, error) {
	o := opRule{name: s.Name, key: s.Key, digest: s.Digest, immutable: s.Immutable || s.Digest != ""}
	if err := checkName(s.Name, seen, sigs, paths); err != nil {
		return o, err
	}
	var err error
	if o.hosts, err = hostglob.Parse(s.Hosts); err != nil {
		return o, fmt.Errorf("hosts: %w", err)
	}
	pat := s.Path
	if pat == "" {
		pat = ".*" // documented: every path
	}
	if o.re, err = regexp.Compile(`^(?:` + pat + `)$`); err != nil {
		return o, fmt.Errorf("path: %w", err)
	}
	if o.strip, err = stripPatterns(s.StripQuery); err != nil {
		return o, err
	}
	if s.Key != "" && s.Digest != "" {
		return o, errors.New("key: a rule has a key or a digest, not both (a digest is the key)")
	}
	if err := checkTemplate(s.Key, o.re); err != nil {
		return o, fmt.Errorf("key: %w", err)
	}
	if err := checkTemplate(s.Digest, o.re); err != nil {
		return o, fmt.Errorf("digest: %w", err)
	}
	if alg, _, _ := strings.Cut(s.Digest, ":"); s.Digest != "" && digestHexLen(alg) == 0 {
		return o, fmt.Errorf("digest: %q: want sha256:<template> or sha512:<template>", s.Digest)
	}
	return o, nil
}

// checkName checks a rule's name: present, header-safe, not taken.
func checkName(name string, seen map[string]bool, sigs []sigRule, paths []pathRule) error {
	switch {
	case name == "":
		return errors.New("name: required (it names the rule in X-Cache-Key-Rule)")
	case len(name) > 64 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "":
		return fmt.Errorf("name: %q: use at most 64 letters, digits, '.', '_' and '-'", name)
	case isBuiltin(name, sigs, paths):
		return fmt.Errorf("name: %q is a built-in rule's name", name)
	case seen[name]:
		return fmt.Errorf("name: %q names an earlier rule too", name)
	}
	seen[name] = true
	return nil
}

// stripPatterns checks strip_query and returns it in lower case.
func stripPatterns(names []string) ([]string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		if n == "" || strings.Contains(strings.TrimSuffix(n, "*"), "*") {
			return nil, fmt.Errorf("strip_query: %q: want a parameter name, or a prefix ending in '*'", n)
		}
		out[i] = strings.ToLower(n)
	}
	return out, nil
}

// checkTemplate checks that every $ reference of tmpl names a group of re,
// as regexp.Expand reads them, which would expand a typo to nothing.
func checkTemplate(tmpl string, re *regexp.Regexp) error {
	for rest := tmpl; ; {
		i := strings.IndexByte(rest, '$')
		if i < 0 {
			return nil
		}
		rest = rest[i+1:]
		if strings.HasPrefix(rest, "$") {
			rest = rest[1:]
			continue
		}
		var name string
		if r, ok := strings.CutPrefix(rest, "{"); ok {
			var closed bool
			if name, rest, closed = strings.Cut(r, "}"); !closed {
				return fmt.Errorf("%q: a '${' without its '}'", tmpl)
			}
		} else {
			n := strings.IndexFunc(rest, func(c rune) bool { return !isNameChar(c) })
			if n < 0 {
				n = len(rest)
			}
			name, rest = rest[:n], rest[n:]
		}
		if err := checkGroup(name, re); err != nil {
			return fmt.Errorf("%q: %w", tmpl, err)
		}
	}
}

func isNameChar(c rune) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// checkGroup checks that name (a number or a group name) names a group of re.
func checkGroup(name string, re *regexp.Regexp) error {
	if name == "" || strings.IndexFunc(name, func(c rune) bool { return !isNameChar(c) }) >= 0 {
		return errors.New("a '$' must start $1, ${1}, $name or ${name}; write $$ for a dollar")
	}
	if n, err := strconv.Atoi(name); err == nil {
		if n > re.NumSubexp() {
			return fmt.Errorf("$%s: the path has %d groups", name, re.NumSubexp())
		}
		return nil
	}
	if re.SubexpIndex(name) < 0 {
		return fmt.Errorf("$%s: the path has no group of that name (write ${1}x for group 1 then x)", name)
	}
	return nil
}

// apply returns the key o gives u (whose query is q), and whether o matches.
func (o opRule) apply(u *url.URL, q []param) (Result, bool) {
	if o.hosts.Len() > 0 && !o.hosts.Match(u.Hostname()) {
		return Result{}, false
	}
	path := escapedPath(u)
	m := o.re.FindStringSubmatchIndex(path)
	if m == nil {
		return Result{}, false
	}
	res := Result{Rule: o.name, Immutable: o.immutable}
	if o.digest != "" {
		d, err := ParseDigest(string(o.re.ExpandString(nil, o.digest, path, m)))
		if err != nil {
			return Result{}, false // documented: the rule matches only valid digests
		}
		res.Digest = d
	}
	q, res.Stripped = removeParams(q, o.strips)
	res.Signed = len(res.Stripped) > 0
	tmpl := string(o.re.ExpandString(nil, o.key, path, m))
	res.Key = composeKey(u, q, res, tmpl, o.key != "")
	return res, true
}

// strips reports whether the parameter name is one o strips.
func (o opRule) strips(name string) bool {
	name = strings.ToLower(name)
	for _, s := range o.strip {
		if p, ok := strings.CutSuffix(s, "*"); ok && strings.HasPrefix(name, p) || s == name {
			return true
		}
	}
	return false
}
