package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/proxy/policy"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// source is what a fill needs to ask the upstream for more of one version.
type source struct {
	url    *url.URL
	header http.Header // end-to-end request fields, no Range or preconditions
	v      policy.Validator
	size   int64
	// segment is set for the fill of one segment of a download split over
	// several connections (segment.go): its ranged request must not be
	// answered with the whole body.
	segment bool
}

func (p *Proxy) sourceFor(req *http.Request, m cache.Meta) source {
	return source{
		url:    req.URL,
		header: policy.UpstreamHeader(req.Header, p.opts.Name),
		v:      validatorOf(m),
		size:   m.Size,
	}
}

// checkPartial verifies that a 206 carries exactly a prefix of want of the
// same version, total included (DESIGN invariant 3).
func checkPartial(resp *http.Response, want rangeutil.Range, size int64, v policy.Validator) error {
	cr, err := rangeutil.ParseContentRange(resp.Header.Get("Content-Range"))
	switch {
	case err != nil || cr.Unsatisfied:
		return fmt.Errorf("%w: %q", policy.ErrBadRange, resp.Header.Get("Content-Range"))
	case !v.SameVersion(policy.ValidatorOf(resp.Header)):
		return errChanged
	case cr.Size >= 0 && cr.Size != size:
		return fmt.Errorf("%w: length %d, stored %d", errChanged, cr.Size, size)
	case cr.Size < 0, cr.Range.Start != want.Start, cr.Range.End > want.End,
		resp.ContentLength >= 0 && resp.ContentLength != cr.Range.Len():
		return fmt.Errorf("%w: got %q for %s", policy.ErrBadRange, resp.Header.Get("Content-Range"), rangeutil.HeaderFor(want))
	}
	return nil
}

// maxOverlap is how many stored bytes a resume of a version identified
// only by its Last-Modified date fetches again, to compare them with what
// we have before splicing (beyond RFC 9110: see overlapStart).
const maxOverlap = 64 << 10

// overlapStart returns where a request for more of version v, whose next
// missing byte is pos, starts. Under a strong ETag that is pos. Under a
// Last-Modified date it is up to maxOverlap bytes earlier, within the
// stored bytes that end at pos: a file rewritten within the second its
// date names still matches If-Range and If-Unmodified-Since, and only its
// bytes can tell (RFC 9110 §8.8.2.2 lets us call such a date strong, but
// it cannot see changes within a second). So it is for an immutable
// resource without validators (a mirror's pool file): the bytes are all
// there is to compare.
func overlapStart(v policy.Validator, have rangeutil.Set, pos int64) int64 {
	if !v.NeedsOverlap() {
		return pos
	}
	for _, r := range have.Ranges() {
		if r.Start < pos && pos <= r.End {
			return max(r.Start, pos-maxOverlap)
		}
	}
	return pos
}

// stored is what a resume compares an overlap with: the entry's bytes.
type stored interface {
	Meta() cache.Meta
	io.ReaderAt
}

// checkOverlap reads the bytes r from body, which starts at r.Start, and
// compares them with the stored ones: errChanged when they differ (DESIGN
// invariant 1). On success body is at r.End.
func checkOverlap(body io.Reader, have io.ReaderAt, r rangeutil.Range) error {
	if r.Empty() {
		return nil
	}
	got, want := make([]byte, r.Len()), make([]byte, r.Len())
	if _, err := io.ReadFull(body, got); err != nil {
		return fmt.Errorf("proxy: read %d bytes of overlap: %w", r.Len(), err)
	}
	if _, err := have.ReadAt(want, r.Start); err != nil {
		return fmt.Errorf("proxy: read stored overlap: %w", err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: bytes %d-%d differ from the stored ones under the same validator", errChanged, r.Start, r.End-1)
	}
	return nil
}

// checkResumed checks a 206 answering a request for ask of version v
// (checkPartial), then the overlap of bytes we have before at
// (checkOverlap). On success the body is at at.
func checkResumed(resp *http.Response, ask rangeutil.Range, at, size int64, v policy.Validator, have io.ReaderAt) error {
	if err := checkPartial(resp, ask, size, v); err != nil {
		return err
	}
	setStart(resp.Body, ask.Start)
	return checkOverlap(resp.Body, have, rangeutil.Range{Start: ask.Start, End: at})
}

// startFill copies body into f in its own goroutine, resuming upstream after
// failures, with a detached context so that no client's pace or departure
// (short of the last one) stops it.
func (p *Proxy) startFill(ctx context.Context, stop *fillStop, f *cache.Fill, e *cache.Entry, body io.ReadCloser, src source) {
	e.Acquire()
	go func() {
		defer p.fillRunning()()
		defer e.Release()
		defer stop.cancel()
		err := p.drive(ctx, stop, f, e, body, src)
		p.finishFill(f, e, src, err)
	}()
}

// startContinuation fills a gap met while a response is already under way:
// its bytes are asked for with If-Match, so that a changed resource fails
// at once (DESIGN invariant 3).
func (p *Proxy) startContinuation(f *cache.Fill, e *cache.Entry, src source) {
	ctx, cancel := context.WithCancel(context.Background())
	stop := p.abandonable(f, src, cancel)
	f.Validated()
	p.startFill(ctx, stop, f, e, nil, src)
}

// startGapFill is startContinuation for a gap a reader met, split into
// segments when the download may be (segment.go).
func (p *Proxy) startGapFill(f *cache.Fill, e *cache.Entry, src source) {
	p.segmentAfter(f, e, src)
	p.startContinuation(f, e, src)
}

func (p *Proxy) finishFill(f *cache.Fill, e *cache.Entry, src source, err error) {
	switch {
	case err == nil:
	case errors.Is(err, errChanged), !src.v.Resumable():
		p.log.Warn("upstream changed or cannot resume; dropping entry", "url", clip(src.url.Redacted()), "at", f.Pos(), "err", clipErr(err))
		e.Drop()
	case gone(err):
		p.log.Warn("upstream says the resource is gone; dropping entry", "url", clip(src.url.Redacted()), "at", f.Pos(), "err", clipErr(err))
		e.Drop()
	case errors.Is(err, context.Canceled): // the fill's context: its clients left
		p.log.Info("download abandoned by its clients; keeping partial", "url", clip(src.url.Redacted()), "at", f.Pos())
	case errors.Is(err, cache.ErrDigestMismatch):
		// The store logged both digests and dropped the entry; its
		// readers are cut before the last byte.
		p.log.Warn("download does not match its digest; its clients are cut", "url", clip(src.url.Redacted()))
	case errors.Is(err, cache.ErrStorage):
		// The store logged the cause; the readers fetch the rest directly.
		p.log.Debug("cannot store download; its clients continue uncached", "url", clip(src.url.Redacted()), "at", f.Pos())
	default:
		p.log.Warn("upstream fill failed; keeping partial", "url", clip(src.url.Redacted()), "at", f.Pos(), "err", clipErr(err))
	}
	if cerr := e.Checkpoint(); cerr != nil && !errors.Is(cerr, cache.ErrStorage) { // the store logged those
		p.log.Error("checkpoint failed", "key", clip(e.Key()), "err", clipErr(cerr))
	}
	f.Finish(err)
}

// drive copies upstream bytes into f until it is full. body is the first
// upstream body (nil to ask for one). After a failure mid-body it asks for
// the rest with Range and If-Match, within the retry budget; failures that
// another attempt cannot mend (retryable) end it at once. Only the fill's
// context, cancelled when its clients leave, ends it as context.Canceled.
// It pauses while it is FillAhead past every reader (pace.go).
func (p *Proxy) drive(ctx context.Context, stop *fillStop, f *cache.Fill, e *cache.Entry, body io.ReadCloser, src source) error {
	rs := p.readersOf(e)
	defer p.dropReaders(e, rs)
	b := newBudget(p.opts.Retry, p.now)
	for {
		if body == nil {
			// Paused without a connection, or after a failure: ask for
			// bytes only once a reader needs them.
			if !p.pause(ctx, rs, f, b, 0) {
				return errWoundDown
			}
			var err error
			body, err = p.resume(ctx, rangeutil.Range{Start: f.Pos(), End: f.End()}, src, e)
			p.resumed(e, err)
			if err != nil {
				if refusedSignature(err) && p.refreshSource(ctx, &src) {
					continue // a fresh signature: ask again at once
				}
				p.honourRetryAfter(err, src, b)
				if ctx.Err() != nil || !retryable(err) {
					return errors.Join(err, ctx.Err())
				}
				if !b.wait(ctx) {
					return fmt.Errorf("proxy: giving up on %s at byte %d after %d attempts: %w", src.url.Redacted(), f.Pos(), b.attempts, err)
				}
				continue
			}
		}
		before := f.Pos()
		err := errWoundDown
		if stop.track(body) {
			err = p.copyBody(ctx, rs, f, body)
			for errors.Is(err, errAhead) && p.pause(ctx, rs, f, b, p.linger(src)) {
				// A reader caught up while the connection was held (or
				// the last one left and it was wound down: copy what
				// the kernel holds).
				err = p.copyBody(ctx, rs, f, body)
			}
		}
		body.Close()
		stopped := !stop.track(nil)
		switch {
		case err == nil:
			return nil
		case stopped, ctx.Err() != nil:
			return errWoundDown
		case errors.Is(err, errAhead) && src.v.Resumable():
			body = nil
			continue // paused past the idle timeout: ask for the rest later
		case !retryable(err), !src.v.Resumable():
			return err // the readers go on without this fill, or are cut
		}
		if f.Pos() > before {
			b.progressAt(lastByte(body))
		}
		body = nil
		p.dropped(e)
		p.log.Info("upstream body failed; resuming", "url", clip(src.url.Redacted()), "at", f.Pos(), "err", clipErr(err))
		if !b.wait(ctx) {
			return fmt.Errorf("proxy: giving up on %s at byte %d after %d attempts: %w", src.url.Redacted(), f.Pos(), b.attempts, err)
		}
	}
}

// resume asks for bytes want of this version, with If-Match (the client
// already has our headers): 206 with a matching Content-Range and
// validator, or a 200 of the same version from a server that ignores Range
// (we skip what we have). Under a date alone it asks from overlapStart and
// compares the overlap with have first. The body it returns is at
// want.Start.
func (p *Proxy) resume(ctx context.Context, want rangeutil.Range, src source, have stored) (io.ReadCloser, error) {
	ask := rangeutil.Range{Start: overlapStart(src.v, have.Meta().Ranges, want.Start), End: want.End}
	h := src.header.Clone()
	h.Set("Range", rangeutil.HeaderFor(ask))
	src.v.SetContinueConditions(h)
	resp, _, err := p.do(ctx, src.url, h)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if err := checkResumed(resp, ask, want.Start, src.size, src.v, have); err != nil {
			resp.Body.Close()
			return nil, err
		}
		return resp.Body, nil
	case http.StatusOK:
		if src.segment {
			// A segment's request was bounded: the whole body is every
			// segment's bytes (skipping to ours would waste them), and the
			// host does not serve ranges.
			resp.Body.Close()
			p.hosts.markRangeless(src.url.Host, p.now())
			return nil, errNoRanges
		}
		if !src.v.SameVersion(policy.ValidatorOf(resp.Header)) || resp.ContentLength != src.size {
			resp.Body.Close()
			return nil, errChanged
		}
		if _, err := io.CopyN(io.Discard, resp.Body, ask.Start); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("proxy: skip %d bytes of a 200: %w", ask.Start, err)
		}
		if err := checkOverlap(resp.Body, have, rangeutil.Range{Start: ask.Start, End: want.Start}); err != nil {
			resp.Body.Close()
			return nil, err
		}
		return resp.Body, nil
	case http.StatusPreconditionFailed, http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: upstream answered %d", errChanged, resp.StatusCode)
	default:
		resp.Body.Close()
		return nil, &statusError{code: resp.StatusCode, retryAfter: retryAfter(resp.Header, p.now())}
	}
}

// pause holds a fill that no reader needs (readers.hold) until one does,
// for at most linger (0: no limit). It reports whether the fill may go on:
// false when linger passed or ctx is done. A pause is not an upstream
// failure: the retry window starts afresh after one.
func (p *Proxy) pause(ctx context.Context, rs *readers, f *cache.Fill, b *budget, linger time.Duration) bool {
	goOn, waited := rs.hold(ctx, f.Pos(), f.End(), p.opts.FillAhead, linger)
	if waited {
		b.progress()
	}
	return goOn
}

// linger is how long a paused fill holds its upstream connection unread:
// the idle timeout, after which the rest is asked for by Range; for ever
// when the version cannot be resumed (its one body is all there is).
func (p *Proxy) linger(src source) time.Duration {
	if !src.v.Resumable() {
		return 0
	}
	return p.idleTimeout()
}

// copyBody writes body into f until f is full; nil only then. It stops
// within one buffer of ctx being cancelled: the transport closes the
// connection asynchronously, and a fill that went on reading would fetch
// bytes that a newer fill has claimed. It returns errAhead, before reading,
// when no reader needs the bytes yet (rs).
func (p *Proxy) copyBody(ctx context.Context, rs *readers, f *cache.Fill, body io.Reader) error {
	bp := p.bufs.getFill()
	defer p.bufs.put(bp)
	buf := *bp
	ub, _ := body.(*upstreamBody)
	for pos := f.Pos(); pos < f.End(); pos = f.Pos() {
		if !rs.needs(pos, f.End(), p.opts.FillAhead) {
			return errAhead
		}
		if ub != nil && ub.at() != pos {
			// Upstream byte k goes to offset k, or nowhere (invariant 1).
			// Reaching this is a bug in how fills are claimed.
			p.log.Error("refusing to write upstream bytes at the wrong offset", "body_at", ub.at(), "fill_at", pos)
			return fmt.Errorf("%w: body at byte %d, fill at %d", errMisplaced, ub.at(), pos)
		}
		n, err := body.Read(buf[:min(int64(len(buf)), f.End()-pos)])
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if n > 0 {
			if _, werr := f.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		switch {
		case errors.Is(err, io.EOF) && f.Pos() < f.End():
			return errShort
		case err != nil && !errors.Is(err, io.EOF):
			return err
		}
	}
	return nil
}

// budget implements Retry: attempts and time since the last progress.
type budget struct {
	r        Retry
	now      func() time.Time
	attempts int
	since    time.Time
	backoff  time.Duration
}

func newBudget(r Retry, now func() time.Time) *budget {
	return &budget{r: r, now: now, since: now(), backoff: r.InitialBackoff}
}

func (b *budget) progress() { b.progressAt(b.now()) }

// progressAt records that a byte arrived at t: the window runs from the
// last byte, not from when its loss was noticed.
func (b *budget) progressAt(t time.Time) {
	b.attempts, b.since, b.backoff = 0, t, b.r.InitialBackoff
}

// wait sleeps before the next attempt; false when the budget is spent or
// ctx is done.
func (b *budget) wait(ctx context.Context) bool {
	b.attempts++
	if b.attempts > b.r.Attempts || b.now().Sub(b.since)+b.backoff > b.r.MaxElapsed {
		return false
	}
	t := time.NewTimer(b.backoff)
	defer t.Stop()
	b.backoff = min(2*b.backoff, b.r.MaxBackoff)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// lastByte returns when body last delivered a byte (now, for a body that
// does not tell).
func lastByte(body io.Reader) time.Time {
	if ub, ok := body.(*upstreamBody); ok {
		return ub.lastByte
	}
	return time.Now()
}

// setStart records which byte of the representation an upstream body
// starts at, so that copyBody can check every write lands there.
func setStart(body io.ReadCloser, start int64) {
	if ub, ok := body.(*upstreamBody); ok {
		ub.start = start
	}
}
