package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/internal/keyrule"
	"github.com/resumeproxy/resumeproxy/proxy/policy"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// An exchange is one client request as the proxy observes it, from
// arrival to the end of its response: what the access log line and the
// request metrics say of it (AccessRecord), and what the status page shows
// of a download under way. It rides in the request context; the request
// path marks it at a few points (arrived, sent, markRevalidated, ...), each
// a single call, so the flow in serve.go, fill.go and body.go stays as it
// reads. Everything else is worked out at the end (finish).
//
// Lock order: Proxy.exMu, then exchange.mu; neither is held while taking
// an entry's lock or Proxy.readersMu.
type exchange struct {
	start time.Time
	req   *http.Request
	w     *countingWriter
	// ab is the client connection's aborter (route), nil for a denied
	// request or a CONNECT.
	ab *aborter

	denied, pass, revalidated, proxyErr, purge atomic.Bool
	// refilled counts this request's own resume of a partial entry.
	refilled atomic.Int64
	// fromCache counts body bytes sent that were stored on arrival.
	fromCache atomic.Int64

	// mu guards the fields below.
	mu sync.Mutex
	// key is how serve keyed the request, nil when it did not come
	// through serve: kept so that the log line need not key it again.
	key *keyrule.Result
	// user is the proxy user the request authenticated as.
	user string
	// arrival is the entry the request found first, and arrivedRanges
	// its bytes then; arrivedSet once looked (arrival nil: nothing).
	arrival       *cache.Entry
	arrivedRanges rangeutil.Set
	arrivedSet    bool
	// entry is the entry the response body reads, rs its readers and
	// resumesAt their resume count when the body started.
	entry     *cache.Entry
	rs        *readers
	resumesAt int64
}

type exchangeKey struct{}

// exchangeOf returns req's exchange, nil outside an observed request.
func exchangeOf(req *http.Request) *exchange { return exchangeIn(req.Context()) }

// exchangeIn returns the exchange of the request ctx belongs to, if any.
func exchangeIn(ctx context.Context) *exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

// observed serves r with next, observed as an exchange: counted, logged
// and visible on the status page while it runs. Origin-form requests (the
// proxy's own pages) are served as they are: the status page polls them.
func (p *Proxy) observed(w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter, *http.Request)) {
	if r.Method != http.MethodConnect && !r.URL.IsAbs() {
		next(w, r)
		return
	}
	ex := &exchange{start: p.now(), w: &countingWriter{ResponseWriter: w}}
	ex.w.now, ex.w.start = p.now, ex.start
	r = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex))
	ex.req = r
	p.exMu.Lock()
	p.exchanges[ex] = struct{}{}
	p.exMu.Unlock()
	defer func() {
		p.exMu.Lock()
		delete(p.exchanges, ex)
		p.exMu.Unlock()
		rec := p.finish(ex)
		p.obs.RequestDone(rec)
		if rec.Result != ResultDenied {
			// Refusals are logged by the gate, once a minute per
			// address: a refused client must not fill the log.
			p.logAccess(rec)
		}
	}()
	next(ex.w, r)
}

// arrived records the entry req found on arrival (nil: none) the first
// time it looks: the bytes it held then are the ones served "from cache".
func (p *Proxy) arrived(req *http.Request, e *cache.Entry) {
	ex := exchangeOf(req)
	if ex == nil {
		return
	}
	var rs rangeutil.Set
	if e != nil {
		rs = e.Meta().Ranges
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if !ex.arrivedSet {
		ex.arrival, ex.arrivedRanges, ex.arrivedSet = e, rs, true
	}
}

// sent records that body b sends n bytes from its entry at b.pos: those
// the entry held when the request arrived count as from the cache.
func (b *entryBody) sent(n int64) {
	ex := exchangeIn(b.ctx)
	if ex == nil || n <= 0 {
		return
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.entry == nil {
		ex.entry, ex.rs = b.file.e, b.rs
		ex.resumesAt = b.rs.resumes.Load()
	}
	if ex.arrival != b.file.e {
		return // another version than the one found: all of it is new
	}
	r := rangeutil.Range{Start: b.pos, End: b.pos + n}
	missing := int64(0)
	for _, g := range ex.arrivedRanges.Missing(r) {
		missing += g.Len()
	}
	ex.fromCache.Add(n - missing)
}

// markKeyed records how serve keyed req.
func markKeyed(req *http.Request, k keyrule.Result) {
	if ex := exchangeOf(req); ex != nil {
		ex.mu.Lock()
		ex.key = &k
		ex.mu.Unlock()
	}
}

// markRevalidated records that req's stale entry was confirmed (304).
func markRevalidated(req *http.Request) {
	if ex := exchangeOf(req); ex != nil {
		ex.revalidated.Store(true)
	}
}

// markPass records that req went through passThrough.
func markPass(req *http.Request) {
	if ex := exchangeOf(req); ex != nil {
		ex.pass.Store(true)
	}
}

// markError records that the proxy answered req with an error of its own.
func markError(req *http.Request, status int) {
	if ex := exchangeOf(req); ex != nil && status >= 500 {
		ex.proxyErr.Store(true)
	}
}

// refilled reports req's refill of a partial entry (a client-triggered
// resume) with the outcome classifyRefill gave its answer.
func (p *Proxy) refilled(req *http.Request, o refillOutcome) {
	outcome := ResumeFailed
	switch o {
	case refillSplice:
		outcome = ResumeOK
		if ex := exchangeOf(req); ex != nil {
			ex.refilled.Add(1)
		}
	case refillReplaced, refillBroken, refillSizeChanged:
		outcome = ResumeChanged
	}
	p.obs.Resume(ResumeClient, outcome)
}

// resumed reports a fill's resume of the entry have (resume's answer err).
func (p *Proxy) resumed(have stored, err error) {
	outcome := ResumeOK
	switch {
	case errors.Is(err, errChanged):
		outcome = ResumeChanged
	case errors.Is(err, context.Canceled):
		return // its clients left: no answer to judge
	case err != nil:
		outcome = ResumeFailed
	}
	p.obs.Resume(ResumeUpstream, outcome)
	e, ok := have.(*cache.Entry)
	if !ok {
		return
	}
	p.readersMu.Lock()
	rs := p.readers[e]
	p.readersMu.Unlock()
	if rs == nil {
		return
	}
	rs.resumes.Add(1)
	if err == nil && rs.drops.Swap(0) > 0 {
		p.obs.HiddenDrop()
	}
}

// dropped records that a fill of e lost its upstream body mid-way and is
// about to resume: if it does, the drop was hidden from the clients.
func (p *Proxy) dropped(e *cache.Entry) {
	p.readersMu.Lock()
	rs := p.readers[e]
	p.readersMu.Unlock()
	if rs != nil {
		rs.drops.Add(1)
	}
}

// fillRunning counts a fill goroutine until the function it returns runs.
func (p *Proxy) fillRunning() func() {
	p.fills.Add(1)
	return func() { p.fills.Add(-1) }
}

// FillsRunning returns how many fills are writing into the cache now.
func (p *Proxy) FillsRunning() int64 { return p.fills.Load() }

// finish works out what ex's AccessRecord says, once its response ended.
func (p *Proxy) finish(ex *exchange) AccessRecord {
	w := ex.w
	r := ex.req
	ex.mu.Lock()
	defer ex.mu.Unlock()
	k := ex.key
	if k == nil {
		kr := p.opts.Rules.Key(r.URL)
		k = &kr
	}
	rec := AccessRecord{
		Start:    ex.start,
		Client:   clientAddr(r).String(),
		User:     ex.user,
		Method:   r.Method,
		URL:      logURL(r.URL, k.Stripped),
		Status:   w.status,
		Duration: p.now().Sub(ex.start),
	}
	if w.status == 0 && r.Method == http.MethodConnect {
		rec.Status = http.StatusOK // the tunnel wrote its own reply
	}
	if !w.headerAt.IsZero() {
		rec.FirstByte = w.headerAt.Sub(ex.start)
	}
	written := w.written.Load()
	rec.FromCache = min(ex.fromCache.Load(), written)
	rec.FromUpstream = written - rec.FromCache
	rec.Resumes = ex.refilled.Load()
	if ex.rs != nil {
		rec.Resumes += ex.rs.resumes.Load() - ex.resumesAt
	}
	rec.Cache = w.xCache
	short := w.length >= 0 && written < w.length && r.Method != http.MethodHead
	rec.ClientAborted = w.writeErr != nil || short && r.Context().Err() != nil
	rec.Result = ex.result(rec)
	if ex.denied.Load() || ex.purge.Load() || ex.proxyErr.Load() {
		rec.FromCache, rec.FromUpstream = 0, 0 // the proxy wrote these itself
	}
	if rec.Cache == xMiss && (rec.Result == ResultMiss || rec.Result == ResultPass) {
		rec.MissReason = missReason(missFacts{
			req: r, status: w.status, header: w.header, size: w.size,
			maxObject: p.store.Usage().MaxObjectSize,
			stored:    ex.arrival != nil && ex.arrivedRanges.Covered() > 0,
			sameEntry: ex.entry != nil && ex.entry == ex.arrival,
			immutable: k.Immutable,
		})
	}
	return rec
}

// result classifies a finished exchange (rec so far).
func (ex *exchange) result(rec AccessRecord) string {
	cut := ex.ab != nil && ex.ab.cut.Load() && !rec.ClientAborted
	switch {
	case ex.denied.Load():
		return ResultDenied
	case ex.purge.Load():
		return ResultPurge
	case ex.req.Method == http.MethodConnect:
		return ResultTunnel
	case ex.proxyErr.Load(), cut:
		return ResultError
	case ex.pass.Load():
		return ResultPass
	}
	switch rec.Cache {
	case xHit:
		if ex.revalidated.Load() {
			return ResultRevalidated
		}
		return ResultHit
	case xPartial:
		return ResultPartial
	case xMiss:
		return ResultMiss
	}
	if rec.Status >= 500 {
		return ResultError
	}
	return ResultPass
}

// missFacts is what missReason decides from.
type missFacts struct {
	req       *http.Request
	status    int
	header    http.Header // the response's, as sent
	size      int64       // the representation's length; -1 unknown
	maxObject int64
	// stored: the request found stored bytes of the resource;
	// sameEntry: its body was read from that entry.
	stored, sameEntry bool
	// immutable: a key rule says the resource never changes, so it needs
	// no validator to be stored and resumed.
	immutable bool
}

// missReason says why a response sent as a MISS was not served from the
// cache when something could have made it a hit: the request forbade it,
// the response may not be stored (policy.NotStorableReason), its length
// is unknown or over max_object_size, or the stored bytes could not be
// used (changed, or no strong validator to resume or revalidate them
// with). "" for a plain cold miss: nothing was stored yet.
func missReason(f missFacts) string {
	if f.req.Method != http.MethodGet {
		return ""
	}
	if !policy.RequestUsesCache(f.req) {
		return "request-no-store"
	}
	resp := &http.Response{StatusCode: f.status, Header: f.header}
	if why := policy.NotStorableReason(f.req, resp); why != "" && !(f.immutable && why == policy.ReasonNoValidator) {
		if why == policy.ReasonStatus {
			return "" // an error or a redirect: nothing to cache
		}
		return why
	}
	switch {
	case f.size < 0:
		return "unknown-length"
	case f.maxObject > 0 && f.size > f.maxObject:
		return "too-large"
	case !f.stored || f.sameEntry:
		return ""
	case !f.immutable && !policy.ValidatorOf(f.header).Resumable():
		return policy.ReasonNoValidator
	}
	return "changed"
}

// countingWriter is the client's response writer, counting what goes
// through it: status, X-Cache, body bytes, when the header went out, and
// whether a write failed. It keeps the writer's zero-copy path (ReadFrom:
// sendfile), flushing and hijacking.
type countingWriter struct {
	http.ResponseWriter
	now   func() time.Time
	start time.Time

	// written is read by the status page while the response runs.
	written atomic.Int64
	// Set by the serving goroutine, read once it is done (finish).
	status   int
	headerAt time.Time
	xCache   string
	header   http.Header // missFields of a MISS's header; nil otherwise
	length   int64       // Content-Length sent; -1 none
	size     int64       // the representation's length; -1 unknown
	writeErr error
}

func (w *countingWriter) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.noteHeader(status)
	}
	w.ResponseWriter.WriteHeader(status)
}

// noteHeader records the response header as it goes out.
func (w *countingWriter) noteHeader(status int) {
	h := w.Header()
	w.status, w.headerAt, w.xCache = status, w.now(), h.Get("X-Cache")
	w.length, w.size = -1, -1
	if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil {
		w.length, w.size = n, n
	}
	if cr, err := rangeutil.ParseContentRange(h.Get("Content-Range")); err == nil {
		w.size = cr.Size
	}
	if w.xCache == xMiss {
		w.header = make(http.Header, len(missFields))
		for _, k := range missFields {
			if v, ok := h[k]; ok {
				w.header[k] = v // sent: nobody changes it any more
			}
		}
	}
}

// missFields are the response fields missReason reads (storability,
// freshness, validators): all a MISS keeps of its header.
var missFields = []string{"Cache-Control", "Pragma", "Vary", "Etag", "Last-Modified", "Expires", "Date", "Age",
	"Content-Encoding", "Content-Range"}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.noteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.count(int64(n), err)
	return n, err
}

// ReadFrom keeps the response's own ReadFrom, which sends a file with
// sendfile on plain HTTP.
func (w *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.noteHeader(http.StatusOK)
	}
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{w}, r)
	}
	n, err := rf.ReadFrom(r)
	w.count(n, err)
	return n, err
}

func (w *countingWriter) count(n int64, err error) {
	w.written.Add(n)
	if err != nil && w.writeErr == nil {
		w.writeErr = err
	}
}

func (w *countingWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *countingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
