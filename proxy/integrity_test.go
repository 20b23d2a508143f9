package proxy

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

// TestFlippedByteNeverServed is issue 3's integrity bar: one flipped byte in
// a body file is never served; the block holding it is fetched again.
func TestFlippedByteNeverServed(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		h := newSchemeHarness(t, s)
		const size = 5*mib + 123
		u := h.set("/f", testorigin.Resource{Size: size, CacheControl: "max-age=3600"})
		wantBody(t, "download", h.get(u), 200, 0, 0, size)
		h.stop()
		flipByte(t, h.dir, 3*mib+77)
		h.start()
		h.origin.ResetCounts()
		r := h.get(u)
		wantBody(t, "after the flip", r, 200, 0, 0, size)
		// HIT: the headers go out before the block is read and found bad.
		wantXCache(t, "after the flip", r, xHit)
		if sent := h.origin.BodyBytes(); sent != mib {
			t.Errorf("origin sent %d body bytes, want %d (the one bad block)", sent, mib)
		}
		h.origin.ResetCounts()
		wantBody(t, "then", h.get(u), 200, 0, 0, size)
		if sent := h.origin.BodyBytes(); sent != 0 {
			t.Errorf("origin sent %d body bytes for a repaired entry, want 0", sent)
		}
	})
}

// flipByte inverts one byte of the only body file under dir.
func flipByte(t *testing.T, dir string, off int64) {
	t.Helper()
	var files []string
	filepath.WalkDir(filepath.Join(dir, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 1 {
		t.Fatalf("found body files %v, want one", files)
	}
	f, err := os.OpenFile(files[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
