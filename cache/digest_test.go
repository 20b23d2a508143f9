package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

func sha256Of(p []byte) string {
	s := sha256.Sum256(p)
	return "sha256:" + hex.EncodeToString(s[:])
}

// TestDigestInOrder: a body written in order is hashed as it is written,
// checked by the write that completes it, and recorded as checked.
func TestDigestInOrder(t *testing.T) {
	const size = 3*BlockSize + 100
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	e := mustCreate(t, s, "digest:a", Meta{Size: size, Digest: sha256Of(content(1, 0, size))})
	writeRange(t, e, 1, rangeutil.Range{Start: 0, End: size / 2})
	if err := e.DigestChecked(); err != nil {
		t.Errorf("DigestChecked on an incomplete body = %v, want nil (nothing to check yet)", err)
	}
	writeRange(t, e, 1, rangeutil.Range{Start: size / 2, End: size})
	if err := e.DigestChecked(); err != nil {
		t.Fatalf("DigestChecked = %v, want nil", err)
	}
	if m := e.Meta(); !m.DigestOK {
		t.Error("Meta().DigestOK = false after the body matched, want true")
	}
	e.Release()
	mustClose(t, s)
	s = openStore(t, dir, Options{})
	defer mustClose(t, s)
	e = mustGet(t, s, "digest:a")
	defer e.Release()
	if m := e.Meta(); !m.DigestOK || e.digest != nil {
		t.Errorf("after reopening: DigestOK %v, digester %v, want true, nil (checked once)", m.DigestOK, e.digest)
	}
}

// TestDigestOutOfOrder: bytes written out of order (a resume, a range) are
// read back from the file when the body is complete.
func TestDigestOutOfOrder(t *testing.T) {
	const size = 2*BlockSize + 7
	s := newStore(t, Options{})
	e := mustCreate(t, s, "digest:b", Meta{Size: size, Digest: sha256Of(content(2, 0, size))})
	defer e.Release()
	writeRange(t, e, 2, rangeutil.Range{Start: BlockSize, End: size})
	writeRange(t, e, 2, rangeutil.Range{Start: 0, End: BlockSize})
	if err := e.DigestChecked(); err != nil || !e.Meta().DigestOK {
		t.Errorf("DigestChecked = %v, DigestOK %v, want nil, true", err, e.Meta().DigestOK)
	}
}

// TestDigestMismatch: a body that hashes to something else fails the write
// that completes it, is dropped, and DigestChecked reports it to readers.
func TestDigestMismatch(t *testing.T) {
	const size = BlockSize + 10
	s := newStore(t, Options{})
	want := sha256Of(content(3, 0, size))
	e := mustCreate(t, s, "digest:c", Meta{Size: size, Digest: want})
	defer e.Release()
	writeRange(t, e, 3, rangeutil.Range{Start: 0, End: size - 1})
	last := content(4, size-1, 1) // another version's last byte
	if _, err := e.WriteAt(last, size-1); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("WriteAt of the last byte = %v, want ErrDigestMismatch", err)
	}
	if err := e.DigestChecked(); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("DigestChecked = %v, want ErrDigestMismatch", err)
	}
	if !e.Obsolete() {
		t.Error("entry not dropped after a digest mismatch")
	}
	if g, err := s.Get("digest:c"); err != nil || g != nil {
		t.Errorf("Get after the mismatch = %v, %v, want nil, nil", g, err)
	}
}

// TestDigestCheckedAfterRestart: a body completed by an earlier run without
// a recorded check (a crash between the two) is checked by its first
// reader.
func TestDigestCheckedAfterRestart(t *testing.T) {
	const size = BlockSize
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	e := mustCreate(t, s, "digest:d", Meta{Size: size, Digest: sha256Of(content(5, 0, size))})
	e.digest = nil // as if the run that wrote it crashed before checking
	writeRange(t, e, 5, rangeutil.Range{Start: 0, End: size})
	e.Release()
	mustClose(t, s)
	s = openStore(t, dir, Options{})
	defer mustClose(t, s)
	g := mustGet(t, s, "digest:d")
	defer g.Release()
	if g.Meta().DigestOK || g.digest == nil {
		t.Fatal("a complete body without a recorded check has no digester")
	}
	if err := g.DigestChecked(); err != nil || !g.Meta().DigestOK {
		t.Errorf("DigestChecked = %v, DigestOK %v, want nil, true", err, g.Meta().DigestOK)
	}
}
