package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

// damageIndex truncates the table files of the index under cacheDir to
// half their size, as a disk or a hand might, and returns how many body
// files the cache holds.
func damageIndex(t *testing.T, cacheDir string) int {
	t.Helper()
	tables, err := filepath.Glob(filepath.Join(cacheDir, "index", "*.sst"))
	if err != nil || len(tables) == 0 {
		t.Fatalf("table files under %s: %v, %v; want some (Close flushes the index)", cacheDir, tables, err)
	}
	for _, p := range tables {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
	}
	return countBodies(t, cacheDir)
}

// countBodies counts the files under cacheDir/data.
func countBodies(t *testing.T, cacheDir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(cacheDir, "data"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestE2EDamagedIndex: a truncated index table made the proxy panic at
// every start (a restart loop, no hint). Now it exits 1 at once with a
// message that names the index and --reset-index, and leaves the body
// files alone; started with --reset-index it serves again, from an empty
// cache, and the flag does nothing to a healthy index.
func TestE2EDamagedIndex(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	const path, size = "/index/damaged.bin", 3 << 20
	o := testorigin.New(t)
	o.Set(path, testorigin.Resource{Size: size, CacheControl: cacheFor})
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "body")

	p := startProxy(t, dir)
	if r := curl(t, p, clientTimeout, o.URL+path, "-o", out); r.code != 0 {
		t.Fatalf("first download: %v", r)
	}
	p.signalAndWait(t, os.Interrupt)
	bodies := damageIndex(t, dir)

	addr := freeAddr(t)
	broken := launch(t, addr, "--listen", addr, "--cache-dir", dir)
	select {
	case <-broken.done:
	case <-time.After(startTimeout):
		t.Fatalf("resumeproxy on a damaged index still running after %v, want a prompt exit\nstderr:\n%s", startTimeout, broken.log())
	}
	var ee *exec.ExitError
	if !errors.As(broken.waitErr, &ee) || ee.ExitCode() != 1 {
		t.Errorf("resumeproxy on a damaged index: %v, want exit status 1", broken.waitErr)
	}
	msg := broken.log()
	for _, want := range []string{"index damaged", filepath.Join(dir, "index"), "--reset-index"} {
		if !strings.Contains(msg, want) {
			t.Errorf("resumeproxy on a damaged index: stderr = %q, want it to contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "goroutine ") {
		t.Errorf("resumeproxy on a damaged index printed a stack trace:\n%s", msg)
	}
	if got := countBodies(t, dir); got != bodies {
		t.Errorf("body files after the failed start = %d, want %d (untouched)", got, bodies)
	}

	reset := startProxy(t, dir, "--reset-index")
	if log := reset.log(); !strings.Contains(log, "moved aside") {
		t.Errorf("resumeproxy --reset-index stderr = %q, want it to say the index was moved aside", log)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, "index.damaged-*"))
	if len(aside) != 1 {
		t.Errorf("after --reset-index, index.damaged-* = %v, want one directory", aside)
	}
	for i, want := range []string{"MISS", "HIT"} {
		hdr := filepath.Join(t.TempDir(), "h")
		if r := curl(t, reset, clientTimeout, o.URL+path, "-o", out, "-D", hdr); r.code != 0 {
			t.Fatalf("download %d after --reset-index: %v", i+1, r)
		}
		if got := fileSum(t, out); got != testorigin.Sum(0, size) {
			t.Errorf("download %d after --reset-index: sha256 = %s, want %s", i+1, got, testorigin.Sum(0, size))
		}
		if _, h, dump := readHeaderDump(t, hdr); h.Get("X-Cache") != want {
			t.Errorf("download %d after --reset-index: X-Cache %q, want %s\n%s", i+1, h.Get("X-Cache"), want, dump)
		}
	}
	reset.signalAndWait(t, os.Interrupt)

	again := startProxy(t, dir, "--reset-index") // a healthy index: kept
	if log := again.log(); strings.Contains(log, "moved aside") {
		t.Errorf("resumeproxy --reset-index on a healthy index: stderr = %q, want nothing moved", log)
	}
	hdr := filepath.Join(t.TempDir(), "h")
	if r := curl(t, again, clientTimeout, o.URL+path, "-o", out, "-D", hdr); r.code != 0 {
		t.Fatalf("download after a second --reset-index: %v", r)
	}
	if _, h, dump := readHeaderDump(t, hdr); h.Get("X-Cache") != "HIT" {
		t.Errorf("download after --reset-index on a healthy index: X-Cache %q, want HIT (the cache kept)\n%s", h.Get("X-Cache"), dump)
	}
}

// TestVerifyResetIndex: verify on a damaged index fails with the way out;
// verify --reset-index takes it and reports an empty cache.
func TestVerifyResetIndex(t *testing.T) {
	withUserCacheDir(t)
	dir := t.TempDir()
	store, err := cache.Open(dir, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := store.Create("http://example.test/a", cache.Meta{Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.WriteAt([]byte("0123456789"), 0); err != nil {
		t.Fatal(err)
	}
	e.Release()
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	damageIndex(t, dir)

	var stdout, stderr strings.Builder
	err = run([]string{"verify", "--cache-dir", dir}, &stdout, &stderr)
	if code := exitCode(err); code != 1 || !errors.Is(err, cache.ErrIndexDamaged) || !strings.Contains(err.Error(), "--reset-index") {
		t.Errorf("verify on a damaged index = %v (exit %d), want ErrIndexDamaged naming --reset-index, exit 1", err, code)
	}
	stdout.Reset()
	err = run([]string{"verify", "--cache-dir", dir, "--reset-index"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("verify --reset-index = %v, want nil", err)
	}
	for _, want := range []string{"moved aside", "1 body files removed", "verified 0 entries"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("verify --reset-index printed %q, want it to contain %q", stdout.String(), want)
		}
	}
}
