package main

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"
)

// TestHelpExitsZero: every command explains itself with --help (and -h)
// and exits 0, as DESIGN's command-line contract says.
func TestHelpExitsZero(t *testing.T) {
	withUserCacheDir(t)
	for _, c := range []struct {
		args []string
		want string // in what it prints
	}{
		{[]string{"--help"}, "resumeproxy ls"},
		{[]string{"-h"}, "-cache-dir"},
		{[]string{"help"}, "resumeproxy purge"},
		{[]string{"verify", "--help"}, "-cache-dir"},
		{[]string{"ca", "--help"}, "ca init"},
		{[]string{"ca", "init", "--help"}, "-dir"},
		{[]string{"ca", "cert", "-h"}, "-dir"},
		{[]string{"passwd", "--help"}, "bcrypt"},
		{[]string{"version", "--help"}, "resumeproxy version"},
		{[]string{"ls", "--help"}, "--partial"},
		{[]string{"ls", "-h"}, "PATTERN"},
		{[]string{"purge", "--help"}, "--prefix"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(c.args, &stdout, &stderr)
		if got := exitCode(err); got != 0 {
			t.Errorf("run(%q) = %v, exit status %d, want 0", c.args, err, got)
		}
		if out := stdout.String() + stderr.String(); !strings.Contains(out, c.want) {
			t.Errorf("run(%q) printed %q, want it to mention %q", c.args, out, c.want)
		}
	}
}

// TestVersion: "resumeproxy version" prints at least the name, the
// version and the Go version, and takes no argument.
func TestVersion(t *testing.T) {
	var stdout bytes.Buffer
	if err := run([]string{"version"}, &stdout, &stdout); err != nil {
		t.Fatalf("run(version) = %v", err)
	}
	if out := stdout.String(); !strings.HasPrefix(out, "resumeproxy ") || !strings.Contains(out, "go:      go1.") {
		t.Errorf("run(version) printed %q, want resumeproxy VERSION and the Go version", out)
	}
	if err := run([]string{"version", "extra"}, &stdout, &stdout); exitCode(err) != 2 {
		t.Errorf("run(version extra) = %v, want a usage error (exit 2)", err)
	}
}

func TestVersionText(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i+1 < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, c := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"go run", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"resumeproxy (devel)\ngo:      go1.26.8\n"},
		{"no module version", debug.BuildInfo{GoVersion: "go1.26.8"},
			"resumeproxy (devel)\ngo:      go1.26.8\n"},
		{"go install @version", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}},
			"resumeproxy v1.2.3\ngo:      go1.26.8\n"},
		{"go build in a checkout", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.4-0.20261201-abcdef"},
			Settings: vcs("vcs", "git", "vcs.revision", "abcdef0123", "vcs.time", "2026-12-01T10:00:00Z", "vcs.modified", "false")},
			"resumeproxy v1.2.4-0.20261201-abcdef\ncommit:  abcdef0123\ndate:    2026-12-01T10:00:00Z\ngo:      go1.26.8\n"},
		{"with changes", debug.BuildInfo{GoVersion: "go1.26.8",
			Settings: vcs("vcs.revision", "abcdef0123", "vcs.time", "2026-12-01T10:00:00Z", "vcs.modified", "true")},
			"resumeproxy (devel)\ncommit:  abcdef0123 (modified)\ndate:    2026-12-01T10:00:00Z\ngo:      go1.26.8\n"},
	} {
		if got := versionText(&c.bi); got != c.want {
			t.Errorf("%s: versionText(%+v) = %q, want %q", c.name, c.bi, got, c.want)
		}
	}
}
