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
// stored version, read from its body file as they become present. Reading
// from the file, not from the upstream, keeps a slow client from slowing the
// fill and lets any number of clients share one fill.
type entryBody struct {
	p      *Proxy
	e      *cache.Entry
	src    source
	ctx    context.Context // the client's request
	client *aborter
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

	// direct is set when the cache cannot store this version's bytes (a
	// full disk): the rest comes straight from upstream, uncached.
	direct *directReader
}

func (p *Proxy) newEntryBody(req *http.Request, e *cache.Entry, r rangeutil.Range, src source) *entryBody {
	b := &entryBody{p: p, e: e, src: src, ctx: req.Context(), client: clientOf(req), rs: p.readersOf(e),
		pos: r.Start, end: r.End, fpos: -1, maxSend: math.MaxInt64}
	if req.TLS != nil {
		b.maxSend = copyBufSize
	}
	b.moved()
	return b
}

// moved tells the entry's fills which bytes this reader has left to send.
func (b *entryBody) moved() { b.rs.set(b, rangeutil.Range{Start: b.pos, End: b.end}) }

// Read returns present bytes, waiting for fills when needed and starting
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
		b.p.log.Debug("client went away", "key", clip(b.e.Key()), "at", b.pos)
	default:
		b.p.log.Warn("cannot complete response; cutting client connection", "key", clip(b.e.Key()), "at", b.pos, "err", clipErr(err))
		b.client.abort()
	}
	return err
}

func (b *entryBody) read(buf []byte) (int, error) {
	for b.direct == nil {
		avail, err := b.await()
		if err != nil {
			return 0, err
		}
		if avail == 0 {
			break // the cache cannot store these bytes
		}
		n := int(min(int64(len(buf)), avail))
		n, err = b.e.ReadAt(buf[:n], b.pos)
		b.pos += int64(n)
		b.moved()
		if errors.Is(err, cache.ErrBodyCut) {
			// The file lost bytes; the entry dropped them: the rest
			// is a gap, which await fetches again.
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
	return b.readDirect(buf)
}

// await waits until the bytes at pos are present and returns how many are,
// up to end. It returns 0 and no error when the cache cannot store them
// (b.direct is set then, and the rest comes straight from upstream). Before
// it waits, it flushes the client's response: headers and bytes sent so
// far must not wait for bytes that have not come.
func (b *entryBody) await() (int64, error) {
	var waited *cache.Fill
	for {
		changed := b.e.Changed()
		if avail := b.e.Available(b.pos); avail > 0 {
			return min(avail, b.end-b.pos), nil
		}
		if waited != nil {
			if _, done, err := waited.State(); done {
				if errors.Is(err, cache.ErrStorage) {
					b.direct = &directReader{budget: newBudget(b.p.opts.Retry, b.p.now)}
					return 0, nil
				}
				if err == nil || errors.Is(err, context.Canceled) {
					// It finished (its last bytes may have landed just
					// after Available looked), or it stopped because its
					// earlier clients left, not because the upstream
					// failed: look again, and claim what is missing.
					waited = nil
					continue
				}
				return 0, fmt.Errorf("proxy: fill ended before byte %d: %w", b.pos, err)
			}
		}
		f, owner := b.e.Claim(b.pos, b.end)
		switch {
		case f == nil && b.e.Obsolete():
			return 0, fmt.Errorf("proxy: byte %d: %w", b.pos, errChanged)
		case f == nil:
			continue // became present
		case owner && !b.src.v.Resumable():
			// The one upstream body of this version is gone: nothing may
			// be spliced to it (DESIGN invariant 1).
			f.Finish(errChanged)
			return 0, fmt.Errorf("proxy: byte %d of a version without a strong validator: %w", b.pos, errChanged)
		case owner:
			b.p.startContinuation(f, b.e, b.src)
		}
		waited = f
		b.client.flush()
		select {
		case <-changed:
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		}
	}
}

// WriteTo sends the body to w, the response writer (io.Copy prefers it to
// Read). Bytes go through a private descriptor of the body file as an
// io.LimitedReader of an *os.File, which net/http hands to sendfile on
// plain HTTP: no copy through user space, also for a client that waits at
// the edge of a fill. Only bytes the cache cannot store go through Read.
func (b *entryBody) WriteTo(w io.Writer) (int64, error) {
	f, err := b.e.OpenReader()
	if err != nil {
		b.p.log.Warn("no zero-copy path for this response", "key", clip(b.e.Key()), "err", clipErr(err))
		return io.CopyBuffer(w, struct{ io.Reader }{b}, nil)
	}
	defer f.Close()
	b.fpos = -1 // a new descriptor
	// pf flushes while bytes straight from upstream (b.direct) are late.
	pf := newPauseFlush(b.client)
	defer pf.stop()
	var total int64
	for b.pos < b.end {
		if b.direct != nil {
			m, err := b.copyDirect(w, pf)
			total += m
			if err != nil {
				return total, err
			}
			continue
		}
		n, err := b.await()
		if err != nil {
			return total, b.failed(err)
		}
		if n == 0 {
			continue // the cache failed: b.direct is set
		}
		m, err := b.sendFile(w, f, min(n, b.maxSend))
		total += m
		if err != nil && !(m > 0 && isTimeout(err)) { // a slow client: another window
			if isTimeout(err) {
				b.p.log.Info("client took nothing for client_write_timeout; cutting it", "key", b.e.Key(), "at", b.pos)
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
	b.pos += m
	b.moved()
	b.fpos = b.pos
	if err != nil {
		b.fpos = -1 // unknown after a failed copy
	}
	if err == nil && m < n && !b.e.BodyEnded(b.pos) {
		// The file ended before bytes the entry still claims.
		err = fmt.Errorf("proxy: body file ended at %d, %d bytes early: %w", b.pos, n-m, io.ErrUnexpectedEOF)
	}
	// Else the entry dropped what the file lost: WriteTo's next await
	// finds a gap and fetches it again.
	return m, err
}

// copyDirect moves one read's worth of bytes that come straight from
// upstream, flushing the response if the upstream pauses.
func (b *entryBody) copyDirect(w io.Writer, pf *pauseFlush) (int64, error) {
	bp := b.p.bufs.get()
	defer b.p.bufs.put(bp)
	pf.wait()
	n, err := b.readDirect(*bp)
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
		if b.direct != nil && b.direct.body != nil {
			b.direct.body.Close()
		}
		b.p.leave(b.e) // first: the quick-abort decision, before the fills wake
		b.rs.remove(b)
		b.p.dropReaders(b.e, b.rs)
	})
	return nil
}

// directReader streams the rest of a response from upstream when the cache
// cannot take it, resuming after drops like a fill does.
type directReader struct {
	body   io.ReadCloser
	budget *budget
}

// readDirect reads the next bytes from upstream, asking for [pos, end) of
// the same version (If-Match) whenever it has no body.
func (b *entryBody) readDirect(buf []byte) (int, error) {
	d := b.direct
	for {
		if d.body == nil {
			body, err := b.p.resume(b.ctx, rangeutil.Range{Start: b.pos, End: b.end}, b.src, b.e)
			if err != nil {
				if !retryable(err) || !d.budget.wait(b.ctx) {
					return 0, fmt.Errorf("proxy: uncached continuation at byte %d: %w", b.pos, err)
				}
				continue
			}
			d.body = body
		}
		n, err := d.body.Read(buf[:min(int64(len(buf)), b.end-b.pos)])
		b.pos += int64(n)
		if n > 0 {
			d.budget.progress()
		}
		switch {
		case b.pos >= b.end:
			return n, nil
		case err != nil:
			d.body.Close()
			d.body = nil
			if n > 0 {
				return n, nil
			}
			if !d.budget.wait(b.ctx) {
				return 0, fmt.Errorf("proxy: uncached continuation at byte %d: %w", b.pos, err)
			}
		case n > 0:
			return n, nil
		}
	}
}
