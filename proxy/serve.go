package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/proxy/policy"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// X-Cache values (DESIGN: command-line contract).
const (
	xHit     = "HIT"
	xMiss    = "MISS"
	xPartial = "PARTIAL"
)

// maxServeAttempts bounds how often one request starts over after losing a
// race with another request on the same entry.
const maxServeAttempts = 4

// serve answers a GET the cache may take part in.
func (p *Proxy) serve(req *http.Request) *http.Response {
	key := policy.CacheKey(req.URL)
	for range maxServeAttempts {
		if resp := p.serveOnce(req, key); resp != nil {
			return resp
		}
	}
	return p.fetchNew(req, key)
}

// serveOnce answers req from the entry stored under key, fetching what is
// missing. It returns nil when it lost a race and should be called again.
func (p *Proxy) serveOnce(req *http.Request, key string) *http.Response {
	e, err := p.store.Get(key)
	if err != nil {
		p.log.Error("cache lookup failed; forwarding uncached", "key", clip(key), "err", clipErr(err))
		return p.fetchUncached(req)
	}
	if e == nil {
		return p.fetchShared(req, key)
	}
	e.Join()
	m := e.Meta()
	v := policy.ValidatorOf(m.Header)
	if !policy.VariantMatches(m.Header, m.RequestHeader, req.Header) {
		p.leave(e)
		if e.Busy() {
			return p.fetchUncached(req) // another variant is downloading: leave it be
		}
		return p.fetchShared(req, key) // the new response replaces this variant
	}
	need := policy.ChooseRange(req, m.Size, v).Range
	gap, missing := m.Ranges.FirstMissing(need)
	switch {
	case missing:
		return p.refill(req, e, need, gap)
	case policy.Fresh(req, m.Header, policy.CurrentAge(m.InitialAge, m.ResponseTime, p.now())):
		return p.fromEntry(req, e, xHit)
	default:
		return p.revalidate(req, e)
	}
}

// flight is one request fetching a resource nothing is stored for; the
// requests for the same key that arrive meanwhile wait for it and then
// read from the entry it stores (one upstream fetch for N cold clients).
type flight struct {
	done   chan struct{}
	stored bool // set before done is closed: an entry was created
}

// fetchShared fetches req as a new entry, or, when another request is
// already doing so for key, waits for it and returns nil so the caller
// reads from that entry.
func (p *Proxy) fetchShared(req *http.Request, key string) *http.Response {
	p.flightsMu.Lock()
	fl, following := p.flights[key]
	if !following {
		fl = &flight{done: make(chan struct{})}
		p.flights[key] = fl
	}
	p.flightsMu.Unlock()
	if following {
		select {
		case <-fl.done:
		case <-req.Context().Done():
			return errorResponse(req, http.StatusBadGateway, "client went away")
		}
		if fl.stored {
			return nil
		}
		return p.fetchNew(req, key) // nothing to share (not storable): fetch on our own
	}
	resp, stored := p.fetchNewStored(req, key)
	fl.stored = stored
	p.flightsMu.Lock()
	delete(p.flights, key)
	p.flightsMu.Unlock()
	close(fl.done)
	return resp
}

// refill answers a request whose bytes need are partly missing from a
// stored version. The upstream request for the first missing span is
// answered before any cached byte is sent (DESIGN invariant 2): a 206 of
// the same version lets us serve cached bytes and then the fetched ones; a
// 200 means the resource changed, and that response replaces the entry.
func (p *Proxy) refill(req *http.Request, e *cache.Entry, need, gap rangeutil.Range) *http.Response {
	gaps := e.Meta().Ranges.Missing(need)
	if len(gaps) == 0 { // a fill wrote them since the caller looked
		p.leave(e)
		return nil
	}
	xc := xPartial
	if gaps[0] == need {
		xc = xMiss
	}
	f, owner := e.Claim(gap.Start, need.End)
	switch {
	case f == nil: // filled or replaced meanwhile
		p.leave(e)
		return nil
	case !owner && f.Stopping():
		// Its validation is old and it is about to end: a new response
		// must ask upstream itself (invariant 2). Let it finish writing
		// what it has, then claim the rest.
		p.awaitEnd(req.Context(), e, f)
		p.leave(e)
		return nil
	case !owner:
		if !p.awaitValidation(req.Context(), e, f) {
			p.leave(e)
			return nil
		}
		return p.fromEntry(req, e, xc)
	}
	m := e.Meta()
	v := policy.ValidatorOf(m.Header)
	if !v.Resumable() {
		// Nobody is filling this entry and its bytes may not be spliced
		// with new ones (DESIGN invariant 1): start over.
		f.Finish(errChanged)
		e.Drop()
		p.leave(e)
		return p.fetchShared(req, policy.CacheKey(req.URL))
	}
	src := p.sourceFor(req, m)
	h := src.header.Clone()
	want := rangeutil.Range{Start: f.Start(), End: f.End()}
	ask := rangeutil.Range{Start: overlapStart(v, m.Ranges, want.Start), End: want.End}
	h.Set("Range", rangeutil.HeaderFor(ask))
	h.Set("If-Range", v.IfRange())
	ctx, cancel := context.WithCancel(context.Background())
	stop := newFillStop(cancel)
	f.OnAbandon(stop.stop, p.keepGoing(src, cancel))
	resp, reqTime, err := p.do(ctx, src.url, h)
	if err != nil {
		f.Finish(err)
		cancel()
		p.leave(e)
		return upstreamErrorResponse(req, err)
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if err := checkResumed(resp, ask, want.Start, m.Size, v, e); err != nil {
			resp.Body.Close()
			f.Finish(err)
			cancel()
			if !errors.Is(err, errChanged) && !errors.Is(err, policy.ErrBadRange) {
				p.leave(e) // the overlap could not be read: keep the entry
				return upstreamErrorResponse(req, err)
			}
			p.log.Warn("refusing to splice upstream 206", "url", clip(src.url.Redacted()), "err", clipErr(err))
			e.Drop()
			p.leave(e)
			return p.fetchNew(req, policy.CacheKey(req.URL))
		}
		p.refreshHeaders(e, resp.Header, reqTime)
		f.Validated()
		p.startFill(ctx, stop, f, e, resp.Body, src)
		return p.fromEntry(req, e, xc)
	case http.StatusOK:
		f.Finish(errChanged)
		e.Drop() // a new version (or a server that ignores Range): start over
		p.leave(e)
		out, _ := p.keep(req, policy.CacheKey(req.URL), resp, reqTime, ctx, cancel)
		return out
	case http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		f.Finish(&statusError{resp.StatusCode})
		cancel()
		e.Drop() // the stored size is wrong now
		p.leave(e)
		return p.fetchNew(req, policy.CacheKey(req.URL))
	default: // 5xx, 404, ...: pass the upstream's answer on; keep the bytes unless it is gone
		f.Finish(&statusError{resp.StatusCode})
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
			e.Drop()
		}
		p.leave(e)
		return p.relay(req, resp, cancel)
	}
}

// awaitValidation waits until another request's fill has been validated by
// the upstream; false when it failed first (or the client left).
func (p *Proxy) awaitValidation(ctx context.Context, e *cache.Entry, f *cache.Fill) bool {
	for {
		ch := e.Changed()
		validated, done, _ := f.State()
		switch {
		case validated:
			return true
		case done:
			return false
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// awaitEnd waits until fill f has ended (or the client left).
func (p *Proxy) awaitEnd(ctx context.Context, e *cache.Entry, f *cache.Fill) {
	for {
		ch := e.Changed()
		if _, done, _ := f.State(); done {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// revalidate asks the upstream whether a stale stored version is still
// current (RFC 9111 §4.3): 304 refreshes it and serves it, 200 replaces it.
func (p *Proxy) revalidate(req *http.Request, e *cache.Entry) *http.Response {
	m := e.Meta()
	v := policy.ValidatorOf(m.Header)
	if !v.CanRevalidate() {
		e.Drop()
		p.leave(e)
		return p.fetchNew(req, policy.CacheKey(req.URL))
	}
	src := p.sourceFor(req, m)
	h := src.header.Clone()
	v.SetRevalidateConditions(h)
	ctx, cancel := context.WithCancel(context.Background())
	resp, reqTime, err := p.do(ctx, src.url, h)
	if err != nil {
		cancel()
		p.leave(e)
		return upstreamErrorResponse(req, err)
	}
	switch resp.StatusCode {
	case http.StatusNotModified:
		resp.Body.Close()
		cancel()
		if !v.SelectedBy(policy.ValidatorOf(resp.Header)) {
			// RFC 9111 §4.3.4: a 304 naming another version selects no
			// stored response, so nothing is updated, and ours may not be
			// served on its word: fetch the current one in full.
			p.log.Warn("upstream 304 names another version; fetching it in full", "url", clip(src.url.Redacted()), "etag", clip(resp.Header.Get("ETag")), "stored", clip(v.ETag()))
			p.leave(e)
			return p.fetchNew(req, policy.CacheKey(req.URL))
		}
		p.refreshHeaders(e, resp.Header, reqTime)
		return p.fromEntry(req, e, xHit)
	case http.StatusOK:
		e.Drop()
		p.leave(e)
		out, _ := p.keep(req, policy.CacheKey(req.URL), resp, reqTime, ctx, cancel)
		return out
	default:
		p.leave(e)
		return p.relay(req, resp, cancel)
	}
}

// fetchNew fetches req upstream as if nothing were stored, and stores the
// response when it may.
func (p *Proxy) fetchNew(req *http.Request, key string) *http.Response {
	resp, _ := p.fetchNewStored(req, key)
	return resp
}

// fetchNewStored is fetchNew that also reports whether it stored the
// response as a new version of key: the flight's followers read from it,
// and asking the store instead would cost another index lookup.
func (p *Proxy) fetchNewStored(req *http.Request, key string) (*http.Response, bool) {
	h := policy.UpstreamHeader(req.Header, p.opts.Name)
	if r := policy.ForwardRange(req); r != "" {
		h.Set("Range", r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	resp, reqTime, err := p.do(ctx, req.URL, h)
	if err != nil {
		cancel()
		return upstreamErrorResponse(req, err), false
	}
	if err := policy.CheckPartialAnswer(h.Get("Range"), resp); err != nil {
		return p.refuseAnswer(req, resp, cancel, err), false
	}
	return p.keep(req, key, resp, reqTime, ctx, cancel)
}

// refuseAnswer drops an upstream answer that must not reach the client (a
// 206 for other bytes than asked) and answers 502 instead.
func (p *Proxy) refuseAnswer(req *http.Request, resp *http.Response, cancel context.CancelFunc, err error) *http.Response {
	p.log.Warn("upstream answer refused", "url", clip(req.URL.Redacted()), "err", clipErr(err))
	resp.Body.Close()
	if cancel != nil {
		cancel()
	}
	return errorResponse(req, http.StatusBadGateway, err.Error())
}

// fetchUncached forwards req upstream, client preconditions and Range
// included, and relays the answer without storing it.
func (p *Proxy) fetchUncached(req *http.Request) *http.Response {
	h := req.Header.Clone()
	policy.RemoveHopByHop(h)
	policy.AddVia(h, p.opts.Name)
	ctx, cancel := context.WithCancel(context.Background())
	resp, _, err := p.do(ctx, req.URL, h)
	if err != nil {
		cancel()
		return upstreamErrorResponse(req, err)
	}
	if err := policy.CheckPartialAnswer(h.Get("Range"), resp); err != nil {
		return p.refuseAnswer(req, resp, cancel, err)
	}
	return p.relay(req, resp, cancel)
}

// keep stores a fresh upstream response as a new version of key and serves
// req from it while it fills; responses that may not be stored are relayed.
// It reports whether it stored one. ctx and cancel govern the upstream
// body.
func (p *Proxy) keep(req *http.Request, key string, resp *http.Response, reqTime time.Time, ctx context.Context, cancel context.CancelFunc) (*http.Response, bool) {
	body, size, err := bodyExtent(resp)
	if err != nil {
		p.log.Warn("upstream sent an unusable Content-Range", "url", clip(req.URL.Redacted()), "err", clipErr(err))
		resp.Body.Close()
		cancel()
		return errorResponse(req, http.StatusBadGateway, err.Error()), false
	}
	if size < 0 || !policy.Storable(req, resp) {
		return p.relay(req, resp, cancel), false
	}
	stored := policy.StoredHeader(resp.Header)
	now := p.now()
	if stored.Get("Date") == "" {
		// RFC 9110 §6.6.1: a cache records when it received a response
		// without Date; freshness and age are computed from it.
		stored.Set("Date", now.UTC().Format(http.TimeFormat))
	}
	m := cache.Meta{
		Status:        http.StatusOK,
		Header:        stored,
		RequestHeader: policy.SelectingHeader(req.Header, resp.Header),
		Size:          size,
		RequestTime:   reqTime,
		ResponseTime:  now,
		InitialAge:    policy.InitialAge(resp.Header, reqTime, now),
	}
	e, f, err := p.store.CreateFill(key, m, body)
	if errors.Is(err, cache.ErrTooLarge) {
		p.log.Info("response too large to store; relaying uncached", "host", req.URL.Host, "reason", err)
		return p.relay(req, resp, cancel), false
	}
	if err != nil {
		p.log.Error("cannot store response; relaying uncached", "key", clip(key), "err", clipErr(err))
		return p.relay(req, resp, cancel), false
	}
	e.Join()
	setStart(resp.Body, body.Start)
	src := p.sourceFor(req, e.Meta())
	stop := newFillStop(cancel)
	f.OnAbandon(stop.stop, p.keepGoing(src, cancel))
	f.Validated()
	p.startFill(ctx, stop, f, e, resp.Body, src)
	out := p.fromEntry(req, e, xMiss)
	if out.StatusCode == http.StatusOK || out.StatusCode == http.StatusPartialContent {
		// Not stored, but this response is the one that set it.
		for _, c := range resp.Header.Values("Set-Cookie") {
			out.Header.Add("Set-Cookie", c)
		}
	}
	return out, true
}

// bodyExtent returns which bytes of the representation a 200 or 206 body
// carries and the complete length (-1 when unknown).
func bodyExtent(resp *http.Response) (rangeutil.Range, int64, error) {
	if resp.StatusCode != http.StatusPartialContent {
		return rangeutil.Range{Start: 0, End: max(resp.ContentLength, 0)}, resp.ContentLength, nil
	}
	cr, err := rangeutil.ParseContentRange(resp.Header.Get("Content-Range"))
	switch {
	case err != nil:
		return rangeutil.Range{}, 0, fmt.Errorf("proxy: 206 Content-Range: %w", err)
	case cr.Unsatisfied, resp.ContentLength >= 0 && resp.ContentLength != cr.Range.Len():
		return rangeutil.Range{}, 0, fmt.Errorf("proxy: 206 Content-Range %q does not match its body", resp.Header.Get("Content-Range"))
	}
	return cr.Range, cr.Size, nil
}

// relay passes an upstream response to the client without storing it.
// cancel ends its upstream request; it runs when the body is closed or as
// soon as the client goes, whichever is first: nothing is kept of a relayed
// body, so it must not outlive its client (a stalled or slow upstream would
// otherwise hold the request until the idle timeout, or for ever).
func (p *Proxy) relay(req *http.Request, resp *http.Response, cancel context.CancelFunc) *http.Response {
	policy.RemoveHopByHop(resp.Header)
	policy.AddVia(resp.Header, p.opts.Name)
	resp.Header.Set("X-Cache", xMiss)
	if resp.ContentLength >= 0 {
		resp.Header.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	unhook := context.AfterFunc(req.Context(), cancel)
	resp.Body = &relayBody{abortOnError{ReadCloser: resp.Body, client: clientOf(req), bufs: p.bufs, log: p.log}, cancel, unhook}
	return resp
}

// relayBody is a relayed upstream body; closing it ends the upstream
// request.
type relayBody struct {
	abortOnError
	cancel context.CancelFunc
	// unhook stops cancel from running when the client goes.
	unhook func() bool
}

func (b *relayBody) Close() error {
	b.unhook()
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// fromEntry builds the client's response from a stored version whose bytes
// are present or being fetched: 304/412 for its preconditions, 416, or the
// 200/206 body read from the entry. It takes over e's reference and join.
func (p *Proxy) fromEntry(req *http.Request, e *cache.Entry, xc string) *http.Response {
	m := e.Meta()
	v := policy.ValidatorOf(m.Header)
	h := http.Header(m.Header) // Meta returned a copy: ours to change
	if h == nil {
		h = http.Header{}
	}
	h.Set("X-Cache", xc)
	policy.AddVia(h, p.opts.Name)
	if age := policy.CurrentAge(m.InitialAge, m.ResponseTime, p.now()); xc == xHit || age >= time.Second {
		// RFC 9111 §4: a response served from the cache carries its
		// current age; so does one an upstream cache had aged, so that
		// caches downstream do not count its lifetime from zero.
		h.Set("Age", policy.AgeSeconds(age))
	}
	if status := policy.CheckPreconditions(req, v); status != 0 {
		p.leave(e)
		return headOnly(req, status, notModifiedHeader(h, status))
	}
	ans := policy.ChooseRange(req, m.Size, v)
	if ans.Status == http.StatusRequestedRangeNotSatisfiable {
		p.leave(e)
		eh := errorResponse(req, ans.Status, "range not satisfiable")
		eh.Header.Set("Content-Range", rangeutil.FormatUnsatisfied(m.Size))
		return eh
	}
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", strconv.FormatInt(ans.Range.Len(), 10))
	if ans.Status == http.StatusPartialContent {
		h.Set("Content-Range", rangeutil.FormatContentRange(ans.Range, m.Size))
	}
	resp := headOnly(req, ans.Status, h)
	resp.ContentLength = ans.Range.Len()
	resp.Body = p.newEntryBody(req, e, ans.Range, p.sourceFor(req, m))
	return resp
}

// notModifiedHeader keeps the fields RFC 9110 §15.4.5 lists for a 304, and
// nothing of the body for a 412.
func notModifiedHeader(h http.Header, status int) http.Header {
	out := http.Header{}
	keep := []string{"X-Cache", "Via"}
	if status == http.StatusNotModified {
		keep = append(keep, "Cache-Control", "Content-Location", "Date", "ETag", "Expires", "Vary", "Last-Modified", "Age")
	}
	for _, k := range keep {
		if vs := h.Values(k); len(vs) > 0 {
			out[k] = vs
		}
	}
	out.Set("Content-Length", "0")
	return out
}

func headOnly(req *http.Request, status int, h http.Header) *http.Response {
	return &http.Response{
		StatusCode: status,
		Status:     strconv.Itoa(status) + " " + http.StatusText(status),
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  h,
		Body:    http.NoBody,
		Request: req,
	}
}

// refreshHeaders stores the header fields of a 304 or 206 of the same
// version over the stored ones (RFC 9111 §3.2, §4.3.4), which renews
// freshness.
func (p *Proxy) refreshHeaders(e *cache.Entry, fresh http.Header, reqTime time.Time) {
	upd := policy.StoredHeader(fresh)
	now := p.now()
	err := e.Update(func(m *cache.Meta) {
		if m.Header == nil {
			m.Header = map[string][]string{}
		}
		for k, vs := range upd {
			m.Header[k] = vs
		}
		m.RequestTime, m.ResponseTime = reqTime, now
		m.InitialAge = policy.InitialAge(fresh, reqTime, now)
	})
	if err != nil {
		p.log.Error("cannot refresh stored headers", "key", clip(e.Key()), "err", clipErr(err))
	}
}

// leave gives up a client's hold on an entry.
func (p *Proxy) leave(e *cache.Entry) {
	e.Leave()
	e.Release()
}
