package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The configuration is decoded from the yaml.Node tree rather than by
// yaml.Decoder into the struct: the tree keeps every key's line, so an
// error can name the key's full path, what it wants, what it got and where
// ("upstream.retries: want an integer, got "eight" (line 12)"), where
// yaml's own errors name the Go type and not the key. It also lets a
// duration take days (7d), which time.ParseDuration does not.

var (
	durationType = reflect.TypeFor[time.Duration]()
	sizeType     = reflect.TypeFor[Size]()
)

// decoder walks a YAML tree into a value, collecting one error per bad key.
type decoder struct {
	errs []error
}

// decode sets the fields of dst (a pointer to a struct) that doc sets;
// keys it leaves out, and null values, keep what dst holds.
func decode(doc *yaml.Node, dst any) error {
	var d decoder
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		d.value(resolve(doc.Content[0]), reflect.ValueOf(dst).Elem(), "")
	}
	return errors.Join(d.errs...)
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// fail records an error for the key at path: "PATH: WHAT (line N)".
func (d *decoder) fail(path string, n *yaml.Node, format string, args ...any) {
	d.failHint(path, n, "", format, args...)
}

// failHint is fail with a hint after the line ("; did you mean ...?").
func (d *decoder) failHint(path string, n *yaml.Node, hint, format string, args ...any) {
	if path == "" {
		path = "(top level)"
	}
	d.errs = append(d.errs, fmt.Errorf("%s: %s (line %d)%s", path, fmt.Sprintf(format, args...), n.Line, hint))
}

// value decodes n into v, the field at path.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // a key with no value keeps its default
	}
	switch {
	case v.Type() == durationType:
		d.parsed(n, v, path, parseDuration)
	case v.Type() == sizeType:
		d.parsed(n, v, path, parseSize)
	case v.Kind() == reflect.Struct:
		d.mapping(n, v, path)
	case v.Kind() == reflect.Slice:
		d.list(n, v, path)
	case v.Kind() == reflect.Map:
		d.dict(n, v, path)
	default:
		d.scalar(n, v, path)
	}
}

// parsed decodes a scalar that parse reads (a duration, a size).
func (d *decoder) parsed(n *yaml.Node, v reflect.Value, path string, parse func(string) (int64, error)) {
	if n.Kind != yaml.ScalarNode {
		d.fail(path, n, "want %s, got %s", want(v.Type()), got(n))
		return
	}
	x, err := parse(n.Value)
	if err != nil {
		d.fail(path, n, "want %s, got %s", want(v.Type()), got(n))
		return
	}
	v.SetInt(x)
}

func parseDuration(s string) (int64, error) {
	t, err := ParseDuration(s)
	return int64(t), err
}

func parseSize(s string) (int64, error) {
	n, err := ParseSize(s)
	return int64(n), err
}

// scalarTags are the YAML tags a scalar of each kind accepts: yaml would
// truncate 10.5 into an integer without a word.
var scalarTags = map[reflect.Kind][]string{
	reflect.Bool:    {"!!bool"},
	reflect.Int:     {"!!int"},
	reflect.Int64:   {"!!int"},
	reflect.Float64: {"!!int", "!!float"},
}

// scalar decodes a string, integer, number or boolean. A string takes any
// scalar as written (listen: 3128 is "3128"); the others take what yaml
// reads, so "8" in quotes is no integer, nor 10.5.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && v.Kind() == reflect.String {
		v.SetString(n.Value)
		return
	}
	p := reflect.New(v.Type())
	if n.Kind != yaml.ScalarNode || !slices.Contains(scalarTags[v.Kind()], n.ShortTag()) || n.Decode(p.Interface()) != nil {
		d.fail(path, n, "want %s, got %s", want(v.Type()), got(n))
		return
	}
	v.Set(p.Elem())
}

// list decodes a sequence into a new slice: a list replaces the default.
func (d *decoder) list(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(path, n, "want %s, got %s", want(v.Type()), got(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.value(resolve(item), s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

// dict decodes a mapping into a new map (auth.users): its keys are data,
// not configuration keys, so any is accepted.
func (d *decoder) dict(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, n, "want %s, got %s", want(v.Type()), got(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.fail(path, k, "want a name as key, got %s", got(k))
			continue
		}
		e := reflect.New(v.Type().Elem()).Elem()
		d.value(val, e, path+"."+k.Value)
		m.SetMapIndex(reflect.ValueOf(k.Value), e)
	}
	v.Set(m)
}

// mapping decodes a mapping into the struct v, whose fields are named by
// their yaml tags; keys it does not name are errors.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, n, "want %s, got %s", want(v.Type()), got(n))
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Tag == "!!merge" { // "<<: *defaults"
			d.merge(val, v, path)
			continue
		}
		at := join(path, k.Value)
		idx, ok := fields[k.Value]
		switch {
		case !ok:
			d.failHint(at, k, suggest(k.Value, fields, path), "unknown key")
		case seen[k.Value] != 0:
			d.fail(at, k, "already set at line %d", seen[k.Value])
		default:
			seen[k.Value] = k.Line
			d.value(val, v.Field(idx), at)
		}
	}
}

// merge applies a YAML merge key's mapping (or list of them) to v.
func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.SequenceNode {
		for _, m := range n.Content {
			d.mapping(resolve(m), v, path)
		}
		return
	}
	d.mapping(n, v, path)
}

// yamlFields maps the yaml names of t's fields to their indexes; fields
// tagged "-" are no keys.
func yamlFields(t reflect.Type) map[string]int {
	fields := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	return fields
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest is "; did you mean PATH?" when one known key is close to key
// (same letters but for case, or at most two edits for a key that long),
// else "".
func suggest(key string, fields map[string]int, path string) string {
	best, bestDist := "", 3
	for name := range fields {
		dist := editDistance(strings.ToLower(key), name)
		if dist < bestDist || (dist == bestDist && name < best) {
			best, bestDist = name, dist
		}
	}
	if best == "" || bestDist > len(best)/3 && !strings.EqualFold(best, key) {
		return ""
	}
	return "; did you mean " + join(path, best) + "?"
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, sub)
		}
		prev = cur
	}
	return prev[len(b)]
}

// want describes what a value of type t is written as.
func want(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration (like 30s, 10m, 12h or 7d)"
	case t == sizeType:
		return "a size (like 4MiB, 512KiB, 1GB or a number of bytes)"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(want(t.Elem()), "an "), "a ") + "s"
	}
	return "a mapping of keys to values"
}

// maxShown bounds how much of a bad value an error quotes.
const maxShown = 64

// got describes node n as the error shows it: a scalar quoted (clipped),
// anything else by its kind.
func got(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	s := n.Value
	if len(s) > maxShown {
		s = s[:maxShown] + "…"
	}
	return strconv.Quote(s)
}

// ParseDuration parses a duration as time.ParseDuration does ("1h30m",
// "250ms"), and also with days of 24 hours, alone or first: "7d", "1d12h",
// "1.5d". A cache's ages are counted in days, and "168h" for a week is a
// chore to read.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	rest, sign := s, time.Duration(1)
	if r, ok := strings.CutPrefix(rest, "-"); ok {
		rest, sign = r, -1
	} else {
		rest = strings.TrimPrefix(rest, "+")
	}
	num, after, ok := strings.Cut(rest, "d")
	if !ok || strings.Trim(num, "0123456789.") != "" {
		return time.ParseDuration(s) // no days first: Go's syntax as it is
	}
	days, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	d := days * float64(24*time.Hour)
	var tail time.Duration
	if after != "" {
		if strings.HasPrefix(after, "-") || strings.HasPrefix(after, "+") {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		if tail, err = time.ParseDuration(after); err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
	}
	if d+float64(tail) >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid duration %q: too long", s)
	}
	return sign * (time.Duration(d) + tail), nil
}
