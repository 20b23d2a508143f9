package hostglob

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pats []string
		host string
		want bool
	}{
		{[]string{"*"}, "example.com", true},
		{[]string{"*"}, "127.0.0.1", true},
		{[]string{"*.example.com"}, "a.example.com", true},
		{[]string{"*.example.com"}, "a.b.example.com", true},
		{[]string{"*.example.com"}, "example.com", false},
		{[]string{"*.example.com"}, "badexample.com", false},
		{[]string{"example.com"}, "EXAMPLE.com.", true},
		{[]string{"Example.COM"}, "example.com", true},
		{[]string{"pypi.org", "files.pythonhosted.org"}, "files.pythonhosted.org", true},
		{[]string{"10.0.0.?"}, "10.0.0.7", true},
		{[]string{"10.0.0.?"}, "10.0.0.17", false},
		{[]string{"registry-[12].example"}, "registry-2.example", true},
		{[]string{"::1"}, "::1", true},
		{nil, "example.com", false},
	}
	for _, tt := range tests {
		l, err := Parse(tt.pats)
		if err != nil {
			t.Fatalf("Parse(%q) = %v", tt.pats, err)
		}
		if got := l.Match(tt.host); got != tt.want {
			t.Errorf("Parse(%q).Match(%q) = %v, want %v", tt.pats, tt.host, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		pat, want string
	}{
		{"", "empty"},
		{"  ", "empty"},
		{"https://example.com/", "not URLs"},
		{"exa mple.com", "not URLs"},
		{"[a-", "syntax"},
		{"bücher.example", "punycode"},
		{"example.com:443", "without a port"},
	} {
		_, err := Parse([]string{tt.pat})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tt.pat, err, tt.want)
		}
	}
}

// FuzzMatch checks Parse and Match never panic, and that a pattern without
// metacharacters matches exactly its own host, whatever the case.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{"example.com", "*.example.com", "[a-z]*.test", "10.0.0.?", "Ex.COM.", "\\"} {
		f.Add(s, "a.example.com")
	}
	f.Fuzz(func(t *testing.T, pat, host string) {
		l, err := Parse([]string{pat})
		if err != nil {
			return
		}
		_ = l.Match(host)
		upper := []byte(pat)
		for i, c := range upper {
			if 'a' <= c && c <= 'z' {
				upper[i] = c - 'a' + 'A'
			}
		}
		if !strings.ContainsAny(pat, `*?[\`) && !l.Match(string(upper)) {
			t.Errorf("Parse(%q).Match(%q) = false, want true", pat, string(upper))
		}
	})
}
