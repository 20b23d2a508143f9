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
	k := p.keyFor(req)
	req = withKey(req, k)
	markKeyed(req, k)
	resp := p.serveKeyed(req, k.Key)
	if k.Rule != "" {
		resp.Header.Set("X-Cache-Key-Rule", k.Rule)
	}
	if isRedirect(resp.StatusCode) {
		p.noteRedirect(req, resp)
	}
	return resp
}

// serveKeyed answers req from the entry stored under key, starting over
// when a step lost a race.
func (p *Proxy) serveKeyed(req *http.Request, key string) *http.Response {
	for range maxServeAttempts {
		if resp, err := p.serveOnce(req, key); !errors.Is(err, errRaced) {
			return resp
		}
	}
	return p.fetchNew(req, key)
}

// serveOnce answers req from the entry stored under key, fetching what is
// missing, as plan decides. Its only error is errRaced.
func (p *Proxy) serveOnce(req *http.Request, key string) (*http.Response, error) {
	e, err := p.store.Get(key)
	if err != nil {
		p.log.Error("cache lookup failed; forwarding uncached", "key", clip(key), "err", clipErr(err))
		return p.fetchUncached(req), nil
	}
	p.arrived(req, e)
	if e == nil {
		return p.fetchShared(req, key)
	}
	h := e.Join()
	defer h.Close()
	switch step, need := plan(req, e.Meta(), p.now(), vouched(req)); step {
	case stepOtherVariant:
		h.Close()
		if e.Busy() {
			return p.fetchUncached(req), nil // another variant is downloading: leave it be
		}
		return p.fetchShared(req, key) // the new response replaces this variant
	case stepRefill:
		return p.refill(req, h, need)
	case stepHit:
		return p.fromEntry(req, h, xHit), nil
	case stepPermit:
		return p.permitThenServe(req, h), nil
	default:
		return p.revalidate(req, h), nil
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
// already doing so for key, waits for it and returns errRaced so the caller
// reads from that entry.
func (p *Proxy) fetchShared(req *http.Request, key string) (*http.Response, error) {
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
			return errorResponse(req, http.StatusBadGateway, "client went away"), nil
		}
		if fl.stored {
			return nil, errRaced
		}
		return p.fetchNew(req, key), nil // nothing to share (not storable): fetch on our own
	}
	resp, stored := p.fetchNewStored(req, key)
	fl.stored = stored
	p.flightsMu.Lock()
	delete(p.flights, key)
	p.flightsMu.Unlock()
	close(fl.done)
	return resp, nil
}

// refill answers a request whose bytes need are partly missing from the
// stored version h holds. The upstream request for the first missing span
// is answered before any stored byte is sent (DESIGN invariant 2);
// classifyRefill says what its answer means, and one action per outcome
// follows.
func (p *Proxy) refill(req *http.Request, h *cache.Hold, need rangeutil.Range) (*http.Response, error) {
	e := h.Entry()
	gaps := e.Meta().Ranges.Missing(need)
	if len(gaps) == 0 { // a fill wrote them since plan looked
		return nil, errRaced
	}
	xc := xPartial
	if gaps[0] == need {
		xc = xMiss
	}
	f, owner := e.Claim(gaps[0].Start, need.End)
	switch {
	case f == nil: // filled or replaced meanwhile
		return nil, errRaced
	case !owner && f.Stopping():
		// Its validation is old and it is about to end: a new response
		// must ask upstream itself (invariant 2). Let it finish writing
		// what it has, then claim the rest.
		p.awaitEnd(req.Context(), e, f)
		return nil, errRaced
	case !owner:
		if m := e.Meta(); m.Guarded || vouched(req) && m.Digest != "" {
			if refused := p.permit(req); refused != nil {
				return refused, nil
			}
		}
		if !p.awaitValidation(req.Context(), e, f) {
			return nil, errRaced
		}
		return p.fromEntry(req, h, xc), nil
	}
	if !validatorOf(e.Meta()).Resumable() {
		// Nobody is filling this entry and its bytes may not be spliced
		// with new ones (DESIGN invariant 1): start over.
		f.Finish(errChanged)
		e.Drop()
		h.Close()
		return p.fetchShared(req, e.Key())
	}
	return p.askGap(req, h, f, xc), nil
}

// gapAsk is a refill's upstream request for the span of fill f: ask is
// what was asked for, want the bytes f needs (ask starts earlier by the
// overlap to compare, under a date-only validator).
type gapAsk struct {
	f         *cache.Fill
	src       source
	ask, want rangeutil.Range
	ctx       context.Context
	cancel    context.CancelFunc
	stop      *fillStop
	resp      *http.Response
	reqTime   time.Time
}

// askGap asks the upstream for the span of fill f, which req's refill
// owns, with Range and If-Range, and carries out what classifyRefill makes
// of the answer.
func (p *Proxy) askGap(req *http.Request, h *cache.Hold, f *cache.Fill, xc string) *http.Response {
	e := h.Entry()
	m := e.Meta()
	v := validatorOf(m)
	segmented := p.shrinkToSegment(f, m, req.URL.Host) // before asking: the request is for its segment only
	g := gapAsk{f: f, src: p.sourceFor(req, m), want: rangeutil.Range{Start: f.Start(), End: f.End()}}
	g.ask = rangeutil.Range{Start: overlapStart(v, m.Ranges, g.want.Start), End: g.want.End}
	hdr := g.src.header.Clone()
	hdr.Set("Range", rangeutil.HeaderFor(g.ask))
	if ir := v.IfRange(); ir != "" {
		hdr.Set("If-Range", ir)
	}
	// Else immutable without a validator: the total length and the
	// overlap tell a changed file (NeedsOverlap).
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.stop = p.abandonable(f, g.src, g.cancel)
	var err error
	if g.resp, g.reqTime, err = p.do(g.ctx, g.src.url, hdr); err != nil {
		f.Finish(err)
		g.cancel()
		return upstreamErrorResponse(req, err)
	}
	outcome, why := classifyRefill(g.resp, g.ask, m.Size, v)
	p.refilled(req, outcome)
	if outcome == refillSplice {
		if why = p.splice(h, g); why == nil {
			if segmented {
				p.startSegmenter(f, e, g.src)
			}
			return p.fromEntry(req, h, xc)
		}
		if !errors.Is(why, errChanged) { // the overlap could not be read: keep the entry
			return upstreamErrorResponse(req, why)
		}
		outcome = refillBroken
	}
	switch outcome {
	case refillReplaced:
		f.Finish(errChanged)
		e.Drop()
		h.Close()
		out, _ := p.keep(req, e.Key(), g.resp, g.reqTime, g.ctx, g.cancel)
		return out
	case refillGone, refillPassOn:
		f.Finish(&statusError{code: g.resp.StatusCode})
		if outcome == refillGone {
			e.Drop()
		}
		return p.relay(req, g.resp, g.cancel)
	}
	// refillBroken, refillSizeChanged: this version cannot answer.
	if outcome == refillBroken {
		p.log.Warn("refusing to splice upstream 206", "url", clip(g.src.url.Redacted()), "err", clipErr(why))
	} else {
		why = &statusError{code: g.resp.StatusCode}
	}
	g.resp.Body.Close()
	f.Finish(why)
	g.cancel()
	return p.dropAndFetch(req, h)
}

// splice checks the overlap a 206 starts with (if any), then starts the
// fill with its body: the stored bytes and the new ones are one version
// from here on. On failure the answer is closed and the fill finished.
func (p *Proxy) splice(h *cache.Hold, g gapAsk) error {
	e := h.Entry()
	setStart(g.resp.Body, g.ask.Start)
	if err := checkOverlap(g.resp.Body, e, rangeutil.Range{Start: g.ask.Start, End: g.want.Start}); err != nil {
		g.resp.Body.Close()
		g.f.Finish(err)
		g.cancel()
		return err
	}
	p.refreshHeaders(e, g.resp.Header, g.reqTime)
	g.f.Validated()
	p.startFill(g.ctx, g.stop, g.f, e, g.resp.Body, g.src)
	return nil
}

// permitThenServe serves the guarded version h holds to req once the
// upstream accepted req itself: by a revalidation when the version has
// validators (a 304 serves it, a 200 replaces it), else by a request for
// its first byte (permit). It costs one round trip per hit.
func (p *Proxy) permitThenServe(req *http.Request, h *cache.Hold) *http.Response {
	if validatorOf(h.Entry().Meta()).CanRevalidate() {
		return p.revalidate(req, h)
	}
	if refused := p.permit(req); refused != nil {
		return refused
	}
	return p.fromEntry(req, h, xHit)
}

// dropAndFetch drops the version h holds, which cannot answer req, and
// fetches req as if nothing were stored.
func (p *Proxy) dropAndFetch(req *http.Request, h *cache.Hold) *http.Response {
	e := h.Entry()
	e.Drop()
	h.Close()
	return p.fetchNew(req, e.Key())
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

// revalidate asks the upstream whether the stale version h holds is still
// current (RFC 9111 §4.3): 304 refreshes it and serves it, 200 replaces it.
func (p *Proxy) revalidate(req *http.Request, h *cache.Hold) *http.Response {
	e := h.Entry()
	m := e.Meta()
	v := validatorOf(m)
	if !v.CanRevalidate() {
		return p.dropAndFetch(req, h)
	}
	src := p.sourceFor(req, m)
	hdr := src.header.Clone()
	v.SetRevalidateConditions(hdr)
	ctx, cancel := context.WithCancel(context.Background())
	resp, reqTime, err := p.do(ctx, src.url, hdr)
	if err != nil {
		cancel()
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
			h.Close()
			return p.fetchNew(req, e.Key())
		}
		p.refreshHeaders(e, resp.Header, reqTime)
		markRevalidated(req)
		return p.fromEntry(req, h, xHit)
	case http.StatusOK:
		e.Drop()
		h.Close()
		out, _ := p.keep(req, e.Key(), resp, reqTime, ctx, cancel)
		return out
	default:
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
	if size < 0 || !storable(req, resp) {
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
	storedFlags(req, &m)
	e, f, err := p.store.CreateFill(key, m, body)
	if errors.Is(err, cache.ErrTooLarge) {
		p.log.Info("response too large to store; relaying uncached", "host", req.URL.Host, "reason", err)
		return p.relay(req, resp, cancel), false
	}
	if err != nil {
		p.log.Error("cannot store response; relaying uncached", "key", clip(key), "err", clipErr(err))
		return p.relay(req, resp, cancel), false
	}
	h := e.Join()
	defer h.Close()
	setStart(resp.Body, body.Start)
	src := p.sourceFor(req, e.Meta())
	if p.shrinkToSegment(f, e.Meta(), req.URL.Host) {
		// Split into segments: its headers were all this response was
		// for. Closed now, before its bytes pile up in socket buffers,
		// it costs the least it can (a bounded request would cost a
		// round trip more for every download, split or not).
		resp.Body.Close()
		cancel()
		p.startSegment(f, e, src) // validated: the client has its headers
		p.startSegmenter(f, e, src)
	} else {
		stop := p.abandonable(f, src, cancel)
		f.Validated()
		p.startFill(ctx, stop, f, e, resp.Body, src)
	}
	out := p.fromEntry(req, h, xMiss)
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

// fromEntry builds the client's response from the stored version h holds,
// whose bytes are present or being fetched: 304/412 for its preconditions,
// 416, or the 200/206 body read from the entry, which takes h over.
func (p *Proxy) fromEntry(req *http.Request, h *cache.Hold, xc string) *http.Response {
	m := h.Entry().Meta()
	v := policy.ValidatorOf(m.Header)
	hdr := http.Header(m.Header) // Meta returned a copy: ours to change
	if hdr == nil {
		hdr = http.Header{}
	}
	hdr.Set("X-Cache", xc)
	policy.AddVia(hdr, p.opts.Name)
	if age := policy.CurrentAge(m.InitialAge, m.ResponseTime, p.now()); xc == xHit || age >= time.Second {
		// RFC 9111 §4: a response served from the cache carries its
		// current age; so does one an upstream cache had aged, so that
		// caches downstream do not count its lifetime from zero.
		hdr.Set("Age", policy.AgeSeconds(age))
	}
	if status := policy.CheckPreconditions(req, v); status != 0 {
		return headOnly(req, status, notModifiedHeader(hdr, status))
	}
	ans := policy.ChooseRange(req, m.Size, v)
	if ans.Status == http.StatusRequestedRangeNotSatisfiable {
		eh := errorResponse(req, ans.Status, "range not satisfiable")
		eh.Header.Set("Content-Range", rangeutil.FormatUnsatisfied(m.Size))
		return eh
	}
	hdr.Set("Accept-Ranges", "bytes")
	hdr.Set("Content-Length", strconv.FormatInt(ans.Range.Len(), 10))
	if ans.Status == http.StatusPartialContent {
		hdr.Set("Content-Range", rangeutil.FormatContentRange(ans.Range, m.Size))
	}
	resp := headOnly(req, ans.Status, hdr)
	resp.ContentLength = ans.Range.Len()
	resp.Body = p.newEntryBody(req, h.Move(), ans.Range, p.sourceFor(req, m))
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
