package main

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/internal/config"
)

// withUserCacheDir points os.UserCacheDir at a fresh directory and returns
// the cache directory resumeproxy should default to under it.
func withUserCacheDir(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", base) // os.UserCacheDir on Unix other than macOS
	t.Setenv("HOME", base)           // macOS: $HOME/Library/Caches
	d, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("os.UserCacheDir() with XDG_CACHE_HOME and HOME set: %v", err)
	}
	return filepath.Join(d, "resumeproxy")
}

// writeFile writes content to a new file in a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestParseFlagsDefaults: with no arguments resumeproxy serves on
// 127.0.0.1:3128 with a cache under the user's cache directory, which is
// what the README's run command relies on.
func TestParseFlagsDefaults(t *testing.T) {
	wantDir := withUserCacheDir(t)
	got, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags(nil) error: %v", err)
	}
	if got.Listen != "127.0.0.1:3128" {
		t.Errorf("parseFlags(nil).Listen = %q, want 127.0.0.1:3128", got.Listen)
	}
	if got.CacheDir != wantDir {
		t.Errorf("parseFlags(nil).CacheDir = %q, want %q", got.CacheDir, wantDir)
	}
	if want := config.Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("parseFlags(nil) = %+v, want config.Default() = %+v", got, want)
	}
}

// TestParseFlagsOverrides checks that --listen and --cache-dir win over
// both the defaults and the config file, in either flag order.
func TestParseFlagsOverrides(t *testing.T) {
	withUserCacheDir(t)
	dir := t.TempDir()
	file := writeFile(t, "c.yaml", "listen: 127.0.0.1:9999\ncache_dir: /nonexistent/from-file\n")
	tests := []struct {
		name     string
		args     []string
		listen   string
		cacheDir string // "" for the default
	}{
		{"listen", []string{"--listen", "127.0.0.1:8080"}, "127.0.0.1:8080", ""},
		{"cache-dir", []string{"--cache-dir", dir}, "127.0.0.1:3128", dir},
		{"both, = form", []string{"--listen=[::1]:3129", "--cache-dir=" + dir}, "[::1]:3129", dir},
		{"config file alone", []string{"--config", file}, "127.0.0.1:9999", "/nonexistent/from-file"},
		{"flags after config", []string{"--config", file, "--listen", "127.0.0.1:1", "--cache-dir", dir}, "127.0.0.1:1", dir},
		{"flags before config", []string{"--cache-dir", dir, "--listen", "127.0.0.1:1", "--config", file}, "127.0.0.1:1", dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, io.Discard)
			if err != nil {
				t.Fatalf("parseFlags(%q) error: %v", tt.args, err)
			}
			want := config.Default()
			want.Listen = tt.listen
			if tt.cacheDir != "" {
				want.CacheDir = tt.cacheDir
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parseFlags(%q) = %+v, want %+v", tt.args, got, want)
			}
		})
	}
}

// TestParseFlagsConfigExample loads the shipped config.example.yaml: it
// must parse, validate and spell out exactly the defaults.
func TestParseFlagsConfigExample(t *testing.T) {
	withUserCacheDir(t)
	got, err := parseFlags([]string{"--config", "config.example.yaml"}, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags(--config config.example.yaml) error: %v", err)
	}
	want := config.Default()
	want.CacheDir = got.CacheDir // the example leaves it commented out, as a sample path
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseFlags(--config config.example.yaml) = %+v, want config.Default() = %+v", got, want)
	}
	if got.CacheDir == "" {
		t.Errorf("parseFlags(--config config.example.yaml).CacheDir is empty")
	}
}

// TestParseFlagsErrors: bad input gets an error that says what is wrong,
// naming the flag, argument or config key.
func TestParseFlagsErrors(t *testing.T) {
	withUserCacheDir(t)
	cfg := func(content string) []string {
		return []string{"--config", writeFile(t, "c.yaml", content)}
	}
	tests := []struct {
		name string
		args []string
		want []string // substrings of the error
	}{
		{"negative retries", cfg("upstream: {retries: -1}\n"), []string{"upstream.retries"}},
		{"zero idle timeout", cfg("upstream:\n  idle_timeout: 0s\n"), []string{"upstream.idle_timeout"}},
		{"tiny checkpoint", cfg("checkpoint_interval: 1KiB\n"), []string{"checkpoint_interval"}},
		{"bad size", cfg("checkpoint_interval: lots\n"), []string{"lots"}},
		{"bad log level", cfg("log_level: loud\n"), []string{"log_level", "loud"}},
		{"unknown key", cfg("bogus_key: 1\n"), []string{"bogus_key"}},
		{"unknown nested key", cfg("upstream: {retrys: 3}\n"), []string{"retrys"}},
		{"missing config", []string{"--config", filepath.Join(t.TempDir(), "absent.yaml")}, []string{"absent.yaml"}},
		{"listen without port", []string{"--listen", "localhost"}, []string{"listen"}},
		{"connect ports", []string{"--connect-ports", "443,x"}, []string{"--connect-ports", `"x"`}},
		{"connect port range", []string{"--connect-ports", "70000"}, []string{"--connect-ports", "70000"}},
		{"bad mitm host", cfg("mitm: {hosts: ['https://x/']}\n"), []string{"mitm.hosts"}},
		{"ca key without cert", cfg("mitm: {ca_key: k.pem}\n"), []string{"mitm.ca_cert"}},
		{"stray argument", []string{"--listen", "127.0.0.1:1", "serve"}, []string{`"serve"`}},
		{"unknown flag", []string{"--port", "1"}, []string{"port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			if err == nil {
				t.Fatalf("parseFlags(%q) = nil error, want one mentioning %q", tt.args, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("parseFlags(%q) error = %q, want it to mention %q", tt.args, err, w)
				}
			}
		})
	}
}

// TestMainRunRejectsBadFlags: run reports a flag error (here: --mitm with
// no CA anywhere) without touching the cache directory.
func TestMainRunRejectsBadFlags(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // no CA from ca init
	dir := filepath.Join(t.TempDir(), "cache")
	err := run([]string{"--cache-dir", dir, "--mitm"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--mitm") || !strings.Contains(err.Error(), "resumeproxy ca init") {
		t.Errorf("run(--mitm) = %v, want an error about --mitm that names resumeproxy ca init", err)
	}
	if got := exitCode(err); got != 2 {
		t.Errorf("exitCode(%v) = %d, want 2", err, got)
	}
	if _, serr := os.Stat(dir); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("run(--mitm) created the cache directory %s (stat: %v), want it untouched", dir, serr)
	}
}

// TestMainRunListenFails: when the address is taken, run returns a listen
// error quickly and releases the cache directory it had opened.
func TestMainRunListenFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	errc := make(chan error, 1)
	go func() {
		errc <- run([]string{"--listen", ln.Addr().String(), "--cache-dir", dir}, io.Discard, io.Discard)
	}()
	select {
	case err = <-errc:
	case <-time.After(15 * time.Second):
		t.Fatalf("run on a taken address %s has not returned after 15s", ln.Addr())
	}
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("run on a taken address = %v, want a listen error", err)
	}
	s, err := cache.Open(dir, cache.Options{})
	if err != nil {
		t.Fatalf("cache.Open(%s) after run failed: %v; want the lock released", dir, err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("closing the cache: %v", err)
	}
}

// TestMainRunLockedCacheDir: run on a cache directory that is in use fails
// with cache.ErrLocked and a message that names the directory.
func TestMainRunLockedCacheDir(t *testing.T) {
	dir := t.TempDir()
	s, err := cache.Open(dir, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = run([]string{"--listen", "127.0.0.1:0", "--cache-dir", dir}, io.Discard, io.Discard)
	if !errors.Is(err, cache.ErrLocked) {
		t.Fatalf("run on a locked cache dir = %v, want cache.ErrLocked", err)
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "another resumeproxy") {
		t.Errorf("run on a locked cache dir: error %q, want it to name %s and another resumeproxy", err, dir)
	}
}
