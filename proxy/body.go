package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sync"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// entryBody is a client's response body: the bytes [pos, end) of one
// stored version. They come from the entry's body file as they become
// present (fileSource): reading from the file, not from the upstream,
// keeps a slow client from slowing the fill and lets any number of clients
// share one fill. Only when the cache cannot store this version's bytes (a
// full disk) does the rest come straight from upstream (upstreamSource).
type entryBody struct {
	p    *Proxy
	hold *cache.Hold
	file fileSource
	up   *upstreamSource // nil until the cache fails
	// client is the connection the body goes to: cut when the body cannot
	// be completed (DESIGN invariant 4), flushed before waits.
	client *aborter
	ctx    context.Context // the client's request
	// rs are the entry's readers, this one among them: its fills pace
	// themselves by where their readers are.
	rs   *readers
	pos  int64
	end  int64
	once sync.Once
	// maxSend bounds one send to the client, so that a slow client
	// finishes one within the write timeout: none over plain HTTP, whose
	// sendfile reports progress when it times out; copyBufSize over TLS.
	maxSend int64
	// fpos is the offset of the descriptor WriteTo sends from, -1 when
	// unknown; it saves a seek per send.
	fpos int64
}

func (p *Proxy) newEntryBody(req *http.Request, h *cache.Hold, r rangeutil.Range, src source) *entryBody {
	client := clientOf(req)
	b := &entryBody{p: p, hold: h, client: client, ctx: req.Context(), rs: p.readersOf(h.Entry()),
		pos: r.Start, end: r.End, fpos: -1, maxSend: math.MaxInt64}
	b.file = fileSource{p: p, e: h.Entry(), src: src, ctx: req.Context(), flush: client.flush}
	if req.TLS != nil {
		b.maxSend = copyBufSize
	}
	b.moved()
	return b
}

// moved tells the entry's fills which bytes this reader has left to send.
func (b *entryBody) moved() { b.rs.set(b, rangeutil.Range{Start: b.pos, End: b.end}) }

// key names the entry in logs.
func (b *entryBody) key() string { return clip(b.file.e.Key()) }

// Read returns the next bytes, waiting for fills when needed and starting
// one for a gap nobody fetches. If the bytes cannot be had, it cuts the
// client connection so the response looks incomplete (DESIGN invariant 4).
func (b *entryBody) Read(buf []byte) (int, error) {
	if b.pos >= b.end {
		return 0, io.EOF
	}
	n, err := b.read(buf)
	return n, b.failed(err)
}

// failed logs why the response cannot go on, unless the client left, and
// cuts the client connection; it returns err.
func (b *entryBody) failed(err error) error {
	switch {
	case err == nil:
	case b.ctx.Err() != nil:
		b.p.log.Debug("client went away", "key", b.key(), "at", b.pos)
	default:
		b.p.log.Warn("cannot complete response; cutting client connection", "key", b.key(), "at", b.pos, "err", clipErr(err))
		b.client.abort()
	}
	return err
}

func (b *entryBody) read(buf []byte) (int, error) {
	for b.up == nil {
		n, err := b.file.await(b.pos, b.end)
		if errors.Is(err, errNotStored) {
			b.up = b.file.upstream()
			break
		}
		if err != nil {
			return 0, err
		}
		m, err := b.file.e.ReadAt(buf[:min(int64(len(buf)), n)], b.pos)
		b.sent(int64(m))
		b.pos += int64(m)
		b.moved()
		if errors.Is(err, cache.ErrBodyCut) {
			// The file lost bytes; the entry dropped them: the rest
			// is a gap, which await fetches again.
			if m == 0 {
				continue
			}
			err = nil
		}
		return m, err
	}
	return b.readUpstream(buf)
}

// readUpstream reads the next bytes from upstreamSource.
func (b *entryBody) readUpstream(buf []byte) (int, error) {
	n, err := b.up.read(b.ctx, buf[:min(int64(len(buf)), b.end-b.pos)], rangeutil.Range{Start: b.pos, End: b.end})
	b.pos += int64(n)
	return n, err
}

// fileSource is the bytes of one stored version as they become present in
// its body file, each block verified before it is served.
type fileSource struct {
	p   *Proxy
	e   *cache.Entry
	src source
	ctx context.Context // the client's request
	// flush sends what the client's response has so far: it must not wait
	// for bytes that have not come.
	flush func()
}

// errNotStored is fileSource.await's answer when the cache cannot store
// the bytes asked for: the rest comes from upstreamSource.
var errNotStored = errors.New("proxy: the cache cannot store this version's bytes")

// await waits until the bytes at pos are present and verified, and
// returns how many are, up to end, fetching a gap nobody fetches. It
// flushes the client's response before it waits.
func (s *fileSource) await(pos, end int64) (int64, error) {
	var waited *cache.Fill
	for {
		changed := s.e.Changed()
		if n := s.e.Present(pos); n > 0 {
			err := s.e.VerifyBlock(pos)
			switch {
			case errors.Is(err, cache.ErrCorrupt):
				continue // dropped: a gap now, fetched again below
			case err != nil:
				// Unchecked is not known bad: serve it; a read error, if
				// that is what it was, shows up when it is read.
				s.p.log.Error("cannot verify a stored block; serving it unchecked", "key", clip(s.e.Key()), "at", pos, "err", clipErr(err))
			}
			if pos+n == s.src.size {
				// The last byte of a body named by a digest goes out
				// only once the whole body matched it.
				if err := s.e.DigestChecked(); err != nil {
					return 0, fmt.Errorf("proxy: byte %d: %w", pos+n-1, err)
				}
			}
			return min(n, end-pos), nil
		}
		if waited != nil {
			if _, done, err := waited.State(); done {
				if errors.Is(err, cache.ErrStorage) {
					return 0, errNotStored
				}
				if err == nil || errors.Is(err, context.Canceled) {
					// It finished (its last bytes may have landed just
					// after Present looked), or it stopped because its
					// earlier clients left, not because the upstream
					// failed: look again, and claim what is missing.
					waited = nil
					continue
				}
				return 0, fmt.Errorf("proxy: fill ended before byte %d: %w", pos, err)
			}
		}
		f, owner := s.e.Claim(pos, end)
		switch {
		case f == nil && s.e.Obsolete():
			return 0, fmt.Errorf("proxy: byte %d: %w", pos, errChanged)
		case f == nil:
			continue // became present
		case owner && !s.src.v.Resumable():
			// The one upstream body of this version is gone: nothing may
			// be spliced to it (DESIGN invariant 1).
			f.Finish(errChanged)
			return 0, fmt.Errorf("proxy: byte %d of a version without a strong validator: %w", pos, errChanged)
		case owner:
			s.p.startGapFill(f, s.e, s.src)
		}
		waited = f
		s.flush()
		select {
		case <-changed:
		case <-s.ctx.Done():
			return 0, s.ctx.Err()
		}
	}
}

// upstream returns the source of the bytes this one cannot store.
func (s *fileSource) upstream() *upstreamSource {
	return &upstreamSource{p: s.p, src: s.src, have: s.e, budget: newBudget(s.p.opts.Retry, s.p.now)}
}

// WriteTo sends the body to w, the response writer (io.Copy prefers it to
// Read). Bytes go through a private descriptor of the body file as an
// io.LimitedReader of an *os.File, which net/http hands to sendfile on
// plain HTTP: no copy through user space, also for a client that waits at
// the edge of a fill. Only bytes the cache cannot store go through Read.
func (b *entryBody) WriteTo(w io.Writer) (int64, error) {
	f, err := b.file.e.OpenReader()
	if err != nil {
		b.p.log.Warn("no zero-copy path for this response", "key", b.key(), "err", clipErr(err))
		return io.CopyBuffer(w, struct{ io.Reader }{b}, nil)
	}
	defer f.Close()
	b.fpos = -1 // a new descriptor
	// pf flushes while bytes from upstreamSource are late.
	pf := newPauseFlush(b.client)
	defer pf.stop()
	var total int64
	for b.pos < b.end {
		if b.up != nil {
			m, err := b.copyUpstream(w, pf)
			total += m
			if err != nil {
				return total, err
			}
			continue
		}
		n, err := b.file.await(b.pos, b.end)
		if errors.Is(err, errNotStored) {
			b.up = b.file.upstream()
			continue
		}
		if err != nil {
			return total, b.failed(err)
		}
		m, err := b.sendFile(w, f, min(n, b.maxSend))
		total += m
		if err != nil && !(m > 0 && isTimeout(err)) { // a slow client: another window
			if isTimeout(err) {
				b.p.log.Info("client took nothing for client_write_timeout; cutting it", "key", b.key(), "at", b.pos)
			}
			b.client.abort() // a failed read or a gone client: either way this response is over
			return total, err
		}
	}
	return total, nil
}

// sendFile writes n present bytes at pos from f. f's offset is where the
// last call left it, so a response read in order seeks once.
func (b *entryBody) sendFile(w io.Writer, f *os.File, n int64) (int64, error) {
	if b.fpos != b.pos {
		if _, err := f.Seek(b.pos, io.SeekStart); err != nil {
			return 0, fmt.Errorf("proxy: seek body file: %w", err)
		}
	}
	b.client.armWrite()
	m, err := io.Copy(w, &io.LimitedReader{R: f, N: n})
	b.sent(m)
	b.pos += m
	b.moved()
	b.fpos = b.pos
	if err != nil {
		b.fpos = -1 // unknown after a failed copy
	}
	if err == nil && m < n && !b.file.e.BodyEnded(b.pos) {
		// The file ended before bytes the entry still claims.
		err = fmt.Errorf("proxy: body file ended at %d, %d bytes early: %w", b.pos, n-m, io.ErrUnexpectedEOF)
	}
	// Else the entry dropped what the file lost: WriteTo's next await
	// finds a gap and fetches it again.
	return m, err
}

// copyUpstream moves one read's worth of bytes from upstreamSource,
// flushing the response if the upstream pauses.
func (b *entryBody) copyUpstream(w io.Writer, pf *pauseFlush) (int64, error) {
	bp := b.p.bufs.get()
	defer b.p.bufs.put(bp)
	pf.wait()
	n, err := b.readUpstream(*bp)
	pf.woke()
	err = b.failed(err) // cuts the client, which must not overlap a flush
	if n > 0 {
		b.client.armWrite()
		if _, werr := w.Write((*bp)[:n]); werr != nil {
			return int64(n), werr
		}
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return int64(n), err
}

// Close releases the client's hold on the entry; if it was the last
// client, fills stop and the bytes so far stay cached.
func (b *entryBody) Close() error {
	b.once.Do(func() {
		if b.up != nil {
			b.up.close()
		}
		b.hold.Close() // first: the quick-abort decision, before the fills wake
		b.rs.remove(b)
		b.p.dropReaders(b.file.e, b.rs)
	})
	return nil
}

// upstreamSource streams bytes of a stored version straight from upstream
// when the cache cannot take them, asking for the same version (If-Match)
// and resuming after drops like a fill does.
type upstreamSource struct {
	p      *Proxy
	src    source
	have   stored // for resume's overlap check
	body   io.ReadCloser
	budget *budget
}

// read reads the next bytes of r (at most len(buf), which fits in r),
// asking for r whenever it has no body.
func (u *upstreamSource) read(ctx context.Context, buf []byte, r rangeutil.Range) (int, error) {
	for {
		if u.body == nil {
			body, err := u.p.resume(ctx, r, u.src, u.have)
			u.p.resumed(u.have, err)
			if err != nil {
				if refusedSignature(err) && u.p.refreshSource(ctx, &u.src) {
					continue
				}
				if !retryable(err) || !u.budget.wait(ctx) {
					return 0, fmt.Errorf("proxy: uncached continuation at byte %d: %w", r.Start, err)
				}
				continue
			}
			u.body = body
		}
		n, err := u.body.Read(buf)
		if n > 0 {
			u.budget.progress()
		}
		switch {
		case int64(n) >= r.Len():
			return n, nil
		case err != nil:
			u.close()
			if n > 0 {
				return n, nil
			}
			if !u.budget.wait(ctx) {
				return 0, fmt.Errorf("proxy: uncached continuation at byte %d: %w", r.Start, err)
			}
		case n > 0:
			return n, nil
		}
	}
}

// close ends the current upstream body, if any.
func (u *upstreamSource) close() {
	if u.body != nil {
		u.body.Close()
		u.body = nil
	}
}
