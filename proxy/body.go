package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// entryBody is a client's response body: the bytes [pos, end) of one
// stored version, read from its body file as they become present. Reading
// from the file, not from the upstream, keeps a slow client from slowing the
// fill and lets any number of clients share one fill.
type entryBody struct {
	p     *Proxy
	e     *cache.Entry
	src   source
	ctx   context.Context // the client's request
	abort func()
	pos   int64
	end   int64
	once  sync.Once
}

func (p *Proxy) newEntryBody(req *http.Request, e *cache.Entry, r rangeutil.Range, src source) *entryBody {
	return &entryBody{p: p, e: e, src: src, ctx: req.Context(), abort: abortFor(req), pos: r.Start, end: r.End}
}

// Read returns present bytes, waiting for fills when needed and starting
// one for a gap nobody fetches. If the bytes cannot be had, it cuts the
// client connection so the response looks incomplete (DESIGN invariant 4).
func (b *entryBody) Read(buf []byte) (int, error) {
	if b.pos >= b.end {
		return 0, io.EOF
	}
	n, err := b.read(buf)
	switch {
	case err == nil:
	case b.ctx.Err() != nil:
		b.p.log.Debug("client went away", "key", b.e.Key(), "at", b.pos)
	default:
		b.p.log.Warn("cannot complete response; cutting client connection", "key", b.e.Key(), "at", b.pos, "err", err)
		b.abort()
	}
	return n, err
}

func (b *entryBody) read(buf []byte) (int, error) {
	var waited *cache.Fill
	for {
		changed := b.e.Changed()
		if avail := b.e.Available(b.pos); avail > 0 {
			n := int(min(int64(len(buf)), avail, b.end-b.pos))
			n, err := b.e.ReadAt(buf[:n], b.pos)
			b.pos += int64(n)
			return n, err
		}
		if waited != nil {
			if _, done, err := waited.State(); done {
				if err == nil {
					err = cache.ErrFillAbandoned
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
		case owner && !b.src.v.resumable():
			// The one upstream body of this version is gone: nothing may
			// be spliced to it (DESIGN invariant 1).
			f.Finish(errChanged)
			return 0, fmt.Errorf("proxy: byte %d of a version without a strong validator: %w", b.pos, errChanged)
		case owner:
			b.p.startContinuation(f, b.e, b.src)
		}
		waited = f
		select {
		case <-changed:
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		}
	}
}

// Close releases the client's hold on the entry; if it was the last
// client, fills stop and the bytes so far stay cached.
func (b *entryBody) Close() error {
	b.once.Do(func() { b.p.leave(b.e) })
	return nil
}
