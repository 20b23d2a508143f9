package main

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
)

// quietLog drops the cache's info lines (the automatic max_size).
var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// lsTime is when fillCache stores everything.
var lsTime = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// fillCache stores, through the cache's API, a version of each URL with
// its size (-1 unknown) and the first stored bytes, in a new cache
// directory that it returns, closed.
func fillCache(t *testing.T, entries map[string][2]int64) string {
	t.Helper()
	dir := t.TempDir()
	s, err := cache.Open(dir, cache.Options{Now: func() time.Time { return lsTime }, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	for url, e := range entries {
		v, err := s.Create(url, cache.Meta{Size: e[0]})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.WriteAt(make([]byte, e[1]), 0); err != nil {
			t.Fatal(err)
		}
		v.Release()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runCmd runs args and returns stdout, stderr and the exit status.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut strings.Builder
	err := run(args, &out, &errOut)
	if err != nil && exitCode(err) != 0 {
		errOut.WriteString("resumeproxy: " + err.Error() + "\n") // as main prints it
	}
	return out.String(), errOut.String(), exitCode(err)
}

// testEntries: two complete, two partial (one of unknown size).
var testEntries = map[string][2]int64{
	"http://example.test/a.iso":     {3 << 20, 3 << 20},
	"http://example.test/b.tar.gz":  {10 << 20, 6 << 20},
	"http://mirror.test/pool/c.deb": {1000, 1000},
	"http://mirror.test/stream":     {-1, 10},
}

func TestLs(t *testing.T) {
	withUserCacheDir(t)
	dir := fillCache(t, testEntries)
	when := lsTime.Local().Format(time.DateTime)
	rows := map[string]string{
		"a": "complete  3.0 MiB   3.0 MiB        " + when + "  http://example.test/a.iso",
		"b": "partial   10.0 MiB  6.0 MiB (60%)  " + when + "  http://example.test/b.tar.gz",
		"c": "complete  1000 B    1000 B         " + when + "  http://mirror.test/pool/c.deb",
		"s": "partial   ?         10 B           " + when + "  http://mirror.test/stream",
	}
	const header = "STATE     SIZE      STORED         LAST USE             URL"
	for _, c := range []struct {
		name    string
		args    []string
		rows    string // keys of rows, in order
		summary string
	}{
		{"all", nil, "abcs", "4 entries, 2 partial, 9.0 MiB stored"},
		{"partial", []string{"--partial"}, "bs", "2 entries, 2 partial, 6.0 MiB stored"},
		{"substring", []string{"mirror.test"}, "cs", "2 entries, 1 partial, 1010 B stored"},
		{"glob", []string{"http://*.test/*.*"}, "abc", "3 entries, 1 partial, 9.0 MiB stored"},
		{"glob spans slashes", []string{"*.deb"}, "c", "1 entry, 0 partial, 1000 B stored"},
		{"partial and pattern", []string{"--partial", "example"}, "b", "1 entry, 1 partial, 6.0 MiB stored"},
		{"nothing matches", []string{"nowhere"}, "", "0 entries, 0 partial, 0 B stored"},
	} {
		stdout, stderr, code := runCmd(t, append([]string{"ls", "--cache-dir", dir}, c.args...)...)
		want := []string{header}
		for _, r := range c.rows {
			want = append(want, rows[string(r)])
		}
		// tabwriter pads every column to the widest cell of the table.
		got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if code != 0 || len(got) != len(want)+1 || got[len(got)-1] != c.summary {
			t.Errorf("%s: ls %q = exit %d, %q (stderr %q), want exit 0, %d rows and %q", c.name, c.args, code, stdout, stderr, len(want)-1, c.summary)
			continue
		}
		for i, w := range want {
			if c.name == "all" && got[i] != w {
				t.Errorf("%s: ls row %d = %q, want %q", c.name, i, got[i], w)
			}
			if fields(got[i]) != fields(w) {
				t.Errorf("%s: ls row %d = %q, want the cells of %q", c.name, i, got[i], w)
			}
		}
	}
}

// fields is s with every run of spaces made one.
func fields(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestLsHashedKey(t *testing.T) {
	withUserCacheDir(t)
	long := "http://example.test/" + strings.Repeat("x", 5000)
	dir := fillCache(t, map[string][2]int64{long: {10, 10}})
	stdout, _, code := runCmd(t, "ls", "--cache-dir", dir)
	want := "http://example.test/" + strings.Repeat("x", 100) + "… (5020 bytes, hashed key)\n"
	if code != 0 || !strings.Contains(stdout, want) {
		t.Errorf("ls of a 5020-byte URL = exit %d, %q, want its first 120 bytes and (5020 bytes, hashed key)", code, stdout)
	}
	stdout, _, code = runCmd(t, "purge", "--cache-dir", dir, "--prefix", "http://example.test/xxx")
	if code != 0 || !strings.Contains(stdout, "purged "+want[:len(want)-1]) {
		t.Errorf("purge --prefix of a hashed key = exit %d, %q, want it purged", code, stdout)
	}
}

func TestPurge(t *testing.T) {
	withUserCacheDir(t)
	dir := fillCache(t, testEntries)
	// The URL is made a key as the proxy makes it: scheme and host in
	// lower case, no default port.
	stdout, stderr, code := runCmd(t, "purge", "--cache-dir", dir, "HTTP://Example.TEST:80/a.iso")
	if code != 0 || stdout != "purged http://example.test/a.iso\n" {
		t.Errorf("purge a.iso = exit %d, %q (stderr %q), want exit 0, purged http://example.test/a.iso", code, stdout, stderr)
	}
	_, stderr, code = runCmd(t, "purge", "--cache-dir", dir, "http://example.test/a.iso")
	if code != 1 || !strings.Contains(stderr, "not in the cache: http://example.test/a.iso") {
		t.Errorf("purge a.iso again = exit %d, stderr %q, want exit 1, not in the cache", code, stderr)
	}
	stdout, stderr, code = runCmd(t, "purge", "--cache-dir", dir, "--prefix", "http://mirror.test/")
	if want := "purged http://mirror.test/pool/c.deb\npurged http://mirror.test/stream\n"; code != 0 || stdout != want {
		t.Errorf("purge --prefix http://mirror.test/ = exit %d, %q (stderr %q), want exit 0, %q", code, stdout, stderr, want)
	}
	_, stderr, code = runCmd(t, "purge", "--cache-dir", dir, "--prefix", "http://mirror.test/")
	if code != 1 || !strings.Contains(stderr, "nothing in the cache starts with http://mirror.test/") {
		t.Errorf("purge --prefix again = exit %d, stderr %q, want exit 1, nothing starts with", code, stderr)
	}
	stdout, _, _ = runCmd(t, "ls", "--cache-dir", dir)
	if !strings.Contains(stdout, "http://example.test/b.tar.gz") || !strings.HasSuffix(stdout, "\n1 entry, 1 partial, 6.0 MiB stored\n") {
		t.Errorf("ls after purges = %q, want b.tar.gz alone", stdout)
	}
}

func TestCacheCommandErrors(t *testing.T) {
	withUserCacheDir(t)
	dir := fillCache(t, testEntries)
	absent := filepath.Join(t.TempDir(), "absent")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"purge", "--cache-dir", dir}, 2, "give one URL, or --prefix PREFIX"},
		{[]string{"purge", "--cache-dir", dir, "--prefix", "http://a/", "http://a/b"}, 2, "give one URL, or --prefix PREFIX"},
		{[]string{"purge", "--cache-dir", dir, "http://a/b", "http://a/c"}, 2, "give one URL, or --prefix PREFIX"},
		{[]string{"purge", "--cache-dir", dir, "/a.iso"}, 2, `"/a.iso" is not an absolute URL`},
		{[]string{"purge", "--cache-dir", dir, "--bogus"}, 2, "bogus"},
		{[]string{"ls", "--cache-dir", dir, "a", "b"}, 2, "one PATTERN at most"},
		{[]string{"ls", "--config", writeFile(t, "c.yaml", "max_size: lots\n")}, 2, "max_size: want a size"},
		{[]string{"ls", "--cache-dir", absent}, 1, "no cache at " + absent},
		{[]string{"purge", "--cache-dir", absent, "http://a/"}, 1, "no cache at " + absent},
	} {
		_, stderr, code := runCmd(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%q = exit %d, stderr %q, want exit %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
}

// TestCacheCommandsWhileRunning: with the cache held by a running proxy
// (here: the store open in this process, which takes the same lock) whose
// admin API cannot be reached, ls, purge and verify exit 1 saying where
// they looked, and touch nothing.
func TestCacheCommandsWhileRunning(t *testing.T) {
	withUserCacheDir(t)
	dir := fillCache(t, testEntries)
	s, err := cache.Open(dir, cache.Options{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	closed := freeAddr(t) // nothing listens there
	for _, args := range [][]string{
		{"ls", "--cache-dir", dir, "--admin", closed},
		{"purge", "--cache-dir", dir, "--admin", closed, "http://example.test/a.iso"},
		{"purge", "--cache-dir", dir, "--admin", closed, "--prefix", "http://"},
		{"verify", "--cache-dir", dir, "--admin", closed},
	} {
		var stdout, stderr strings.Builder
		err := run(args, &stdout, &stderr)
		if code := exitCode(err); code != 1 || !errors.Is(err, errProxyRunning) {
			t.Errorf("%q while the proxy runs = %v (exit %d), want errProxyRunning, exit 1", args, err, code)
			continue
		}
		for _, want := range []string{"a resumeproxy is running on this cache in " + dir, "admin API is not reachable at " + closed, "--admin ADDR"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q while the proxy runs = %q, want it to say %q", args, err, want)
			}
		}
	}
	n := 0
	if err := s.List(func(cache.Info) bool { n++; return true }); err != nil || n != len(testEntries) {
		t.Errorf("List() after the commands = %d entries, %v, want %d", n, err, len(testEntries))
	}
}

func TestHumanSize(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"}, {10 << 20, "10.0 MiB"},
		{3 << 30, "3.0 GiB"}, {1 << 40, "1.0 TiB"}, {1 << 62, "4.0 EiB"},
	} {
		if got := humanSize(c.n); got != c.want {
			t.Errorf("humanSize(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

func TestMatcher(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "http://a/b", true},
		{"a/b", "http://a/b", true},
		{"A/B", "http://a/b", false},
		{"http://a/*", "http://a/b/c.iso", true},
		{"*.iso", "http://a/b/c.iso", true},
		{"*.iso", "http://a/b/c.iso?x=1", false},
		{"*.iso*", "http://a/b/c.iso?x=1", true},
		{"http://?/b", "http://a/b", true},
		{"http://?/b", "http://ab/b", false},
		{"a.b*", "http://axb/", false}, // the dot is a dot
		{"[a]*", "[a]x", true},
		{"*(x|y)*", "http://a/(x|y)", true},
	} {
		if got := matcher(c.pattern)(c.s); got != c.want {
			t.Errorf("matcher(%q)(%q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}
