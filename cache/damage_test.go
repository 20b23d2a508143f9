package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// closedStoreWith fills a store in dir with n complete entries of 100
// bytes and closes it, which leaves its records in one table file. It
// returns the names of the body files.
func closedStoreWith(t *testing.T, dir string, n int) []string {
	t.Helper()
	s := openStore(t, dir, Options{manual: true})
	for i := range n {
		e := mustCreate(t, s, fmt.Sprintf("http://example.test/%d", i), Meta{Size: 100})
		writeRange(t, e, 1, rangeutil.Range{Start: 0, End: 100})
		e.Release()
	}
	mustClose(t, s)
	return bodyFileNames(t, dir)
}

// bodyFileNames lists the files under dir/data, sorted.
func bodyFileNames(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(filepath.Join(dir, "data"), func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			names = append(names, filepath.Base(path))
		}
		return err
	})
	if err != nil {
		t.Fatalf("list body files: %v", err)
	}
	slices.Sort(names)
	return names
}

// tableFile returns the one table file of dir's index.
func tableFile(t *testing.T, dir string) string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "index", "*.sst"))
	if err != nil || len(names) != 1 {
		t.Fatalf("table files in %s = %v, %v, want exactly one", dir, names, err)
	}
	return names[0]
}

// xorBytes flips the bits of n bytes of path from off: deterministic
// "random bytes".
func xorBytes(t *testing.T, path string, off, n int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := off; i < off+n && i < int64(len(b)); i++ {
		b[i] ^= 0x5a
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantDamaged checks that opening dir fails with ErrIndexDamaged, a
// message naming the index, and every body file still there.
func wantDamaged(t *testing.T, dir string, bodies []string) {
	t.Helper()
	s, err := Open(dir, Options{Logger: testOptions(t).Logger, manual: true})
	if err == nil {
		s.Close()
	}
	if !errors.Is(err, ErrIndexDamaged) {
		t.Errorf("Open(damaged index) error = %v, want ErrIndexDamaged", err)
	} else if idx := filepath.Join(dir, "index"); !strings.Contains(err.Error(), idx) {
		t.Errorf("Open(damaged index) error = %q, want it to name %s", err, idx)
	}
	if got := bodyFileNames(t, dir); !slices.Equal(got, bodies) {
		t.Errorf("after Open(damaged index), %d body files, want all %d untouched", len(got), len(bodies))
	}
}

// TestOpenTruncatedTable: a table file cut short made Badger panic in a
// goroutine of its own at every start (a restart loop with no hint). Now
// Open fails with ErrIndexDamaged and touches no body file.
func TestOpenTruncatedTable(t *testing.T) {
	dir := t.TempDir()
	bodies := closedStoreWith(t, dir, 20)
	sst := tableFile(t, dir)
	fi, err := os.Stat(sst)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sst, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	wantDamaged(t, dir, bodies)
}

// TestOpenCorruptTableKeepsBodies: random bytes in the data of a table
// made Badger's iterator stop early or records fail to decode; the startup
// scan then took most body files for orphans and deleted them.
func TestOpenCorruptTableKeepsBodies(t *testing.T) {
	for _, frac := range []int64{10, 40, 70} {
		t.Run(fmt.Sprintf("at %d%%", frac), func(t *testing.T) {
			dir := t.TempDir()
			bodies := closedStoreWith(t, dir, 500)
			sst := tableFile(t, dir)
			fi, err := os.Stat(sst)
			if err != nil {
				t.Fatal(err)
			}
			xorBytes(t, sst, fi.Size()*frac/100, 64)
			wantDamaged(t, dir, bodies)
		})
	}
}

// TestOpenTruncatedManifest: Badger cuts a manifest back to its last
// complete change and deletes the tables the rest named; the scan then
// finds no record and every body file looked orphaned.
func TestOpenTruncatedManifest(t *testing.T) {
	dir := t.TempDir()
	bodies := closedStoreWith(t, dir, 20)
	manifest := filepath.Join(dir, "index", badger.ManifestFilename)
	fi, err := os.Stat(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(manifest, fi.Size()-1); err != nil {
		t.Fatal(err)
	}
	wantDamaged(t, dir, bodies)
	if _, err := os.Stat(tableFile(t, dir)); err != nil {
		t.Errorf("table file after Open(truncated manifest): %v, want it kept", err)
	}
}

// TestOpenUndecodableRecordKeepsBodies: a record that does not decode may
// have named any body file, so the scan that meets it deletes none.
func TestOpenUndecodableRecordKeepsBodies(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{manual: true})
	e := mustCreate(t, s, "http://example.test/a", Meta{Size: 100})
	writeRange(t, e, 1, rangeutil.Range{Start: 0, End: 100})
	e.Release()
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(recordKey("http://example.test/a"), []byte("{not json"))
	}); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)
	wantDamaged(t, dir, bodyFileNames(t, dir))
}

// TestResetIndex: the way out of a damaged index moves it aside, removes
// the body files nothing can vouch for, and leaves a cache that opens
// empty and works.
func TestResetIndex(t *testing.T) {
	dir := t.TempDir()
	closedStoreWith(t, dir, 20)
	sst := tableFile(t, dir)
	if err := os.Truncate(sst, 10); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "README"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	aside, removed, err := ResetIndex(dir, now)
	if err != nil {
		t.Fatalf("ResetIndex() error: %v", err)
	}
	if want := filepath.Join(dir, "index.damaged-20260304T050607Z"); aside != want {
		t.Errorf("ResetIndex() aside = %q, want %q", aside, want)
	}
	if removed != 20 {
		t.Errorf("ResetIndex() removed = %d, want 20", removed)
	}
	if _, err := os.Stat(filepath.Join(aside, filepath.Base(sst))); err != nil {
		t.Errorf("damaged table after ResetIndex: %v, want it kept aside", err)
	}
	if got := bodyFileNames(t, dir); !slices.Equal(got, []string{"README"}) {
		t.Errorf("files under data/ after ResetIndex = %v, want [README] (not a body file)", got)
	}
	s := openStore(t, dir, Options{manual: true})
	defer mustClose(t, s)
	if keys, err := s.keys(); len(keys) != 0 || err != nil {
		t.Errorf("keys after ResetIndex = %v, %v, want none", keys, err)
	}
	e := mustCreate(t, s, "http://example.test/0", Meta{Size: 100})
	writeRange(t, e, 2, rangeutil.Range{Start: 0, End: 100})
	checkRange(t, e, 2, rangeutil.Range{Start: 0, End: 100})
	e.Release()
}

// TestResetIndexLocked: no reset under a running process.
func TestResetIndexLocked(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{manual: true})
	defer mustClose(t, s)
	if _, _, err := ResetIndex(dir, time.Now()); !errors.Is(err, ErrLocked) {
		t.Errorf("ResetIndex(dir in use) error = %v, want ErrLocked", err)
	}
}

func TestLogKey(t *testing.T) {
	long := strings.Repeat("a", 70_000)
	tests := []struct {
		key, want string
	}{
		{"http://x/", "http://x/"},
		{long[:maxLogKey], long[:maxLogKey]},
		{long, long[:maxLogKey] + "…(70000 bytes)"},
	}
	for _, tt := range tests {
		if got := logKey(tt.key); got != tt.want {
			t.Errorf("logKey(%d bytes) = %.40q (%d bytes), want %.40q", len(tt.key), got, len(got), tt.want)
		}
	}
}
