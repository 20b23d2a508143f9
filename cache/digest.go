package cache

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
)

// ErrDigestMismatch is the error of a body named by a digest (Meta.Digest)
// whose complete bytes hash to something else: the version is dropped and
// its last byte never served, so no client gets a complete wrong file.
var ErrDigestMismatch = errors.New("cache: body does not match its digest")

// digester hashes a body named by a digest as it is written, in order from
// byte 0; bytes written elsewhere (a resume after a restart, a range) are
// read back from the file when the body is complete.
type digester struct {
	alg  string
	want string // lower-case hex

	// mu guards the fields below; it is held while hashing, never
	// together with the entry's mu.
	mu   sync.Mutex
	h    hash.Hash
	pos  int64 // the bytes [0, pos) are hashed
	done bool  // checked: err is the outcome
	err  error
}

// newDigester returns the digester of a body named by digest, or nil (and
// an error) for a digest it cannot check.
func newDigester(digest string) (*digester, error) {
	alg, want, _ := strings.Cut(digest, ":")
	var h hash.Hash
	switch alg {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return nil, fmt.Errorf("cache: digest %q: unknown algorithm", digest)
	}
	if len(want) != 2*h.Size() {
		return nil, fmt.Errorf("cache: digest %q: want %d hex digits", digest, 2*h.Size())
	}
	return &digester{alg: alg, want: strings.ToLower(want), h: h}, nil
}

// wrote hashes p, written at off, if it continues the bytes hashed so far.
func (d *digester) wrote(p []byte, off int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done || off > d.pos || off+int64(len(p)) <= d.pos {
		return
	}
	p = p[d.pos-off:]
	d.h.Write(p)
	d.pos += int64(len(p))
}

// check hashes what is not hashed yet of the size bytes of body and
// compares. It runs once, and calls outcome with the result before any
// other caller learns it (they wait on mu): what the first check does
// about it (drop the version) is done when the others see the error. A
// body that cannot be read back counts as not matching.
func (d *digester) check(body io.ReaderAt, size int64, outcome func(error)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done {
		return d.err
	}
	d.done = true
	if d.pos < size {
		if _, err := io.Copy(d.h, io.NewSectionReader(body, d.pos, size-d.pos)); err != nil {
			d.err = fmt.Errorf("%w: cannot read it back: %w", ErrDigestMismatch, err)
		}
		d.pos = size
	}
	if got := hex.EncodeToString(d.h.Sum(nil)); d.err == nil && got != d.want {
		d.err = fmt.Errorf("%w: want %s:%s, got %s:%s", ErrDigestMismatch, d.alg, d.want, d.alg, got)
	}
	outcome(d.err)
	return d.err
}

// DigestChecked tells a reader about to serve a body's last byte whether it
// may: nil when the version has no digest or its complete body matched it
// (checked once, by the write that completed it or here, while the reader
// waits), and also when the body is incomplete, so that a reader of a
// range does not wait for bytes nobody fetches (only a complete body can
// be checked, and a client of a range gets no whole file to be wrong).
// ErrDigestMismatch when it does not match: the version is dropped.
func (e *Entry) DigestChecked() error {
	e.mu.Lock()
	d, ok, complete := e.digest, e.meta.DigestOK, e.meta.Complete()
	e.mu.Unlock()
	if d == nil || ok || !complete {
		return nil
	}
	return e.checkDigest()
}

// checkDigest checks a complete body against its digest and records the
// outcome once: DigestOK committed, or the version dropped.
func (e *Entry) checkDigest() error {
	e.mu.Lock()
	d, size := e.digest, e.meta.Size
	e.mu.Unlock()
	return d.check(e, size, func(err error) {
		if err != nil {
			e.store.log.Warn("cache: body does not match its digest; dropping it", "key", logKey(e.key), "err", err)
			e.Drop()
			return
		}
		e.store.log.Info("cache: body matches its digest", "key", logKey(e.key), "digest", d.alg+":"+d.want)
		if uerr := e.Update(func(m *Meta) { m.DigestOK = true }); uerr != nil {
			e.store.log.Error("cache: record a checked digest", "key", logKey(e.key), "err", uerr)
		}
	})
}
