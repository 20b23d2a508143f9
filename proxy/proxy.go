// Package proxy holds the HTTP semantics of resumeproxy: which requests and
// responses are cached (RFC 9111), how one request is answered from the
// cache and upstream, the upstream reader that resumes after a drop, and the
// goproxy wiring.
package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/internal/access"
	"github.com/resumeproxy/resumeproxy/internal/keyrule"
	"github.com/resumeproxy/resumeproxy/proxy/policy"
)

// Retry bounds how the proxy resumes an upstream body that failed. Counts
// and time restart whenever a byte arrives, so a download that keeps making
// progress is never abandoned. Only failures another attempt may mend are
// retried: no response, a dropped or stalled body, 5xx, 429, 408; a final
// status (404, 410, 403, ...) cuts the client at once.
type Retry struct {
	// Attempts is how many times in a row a fill is retried without progress.
	// Default 8.
	Attempts int
	// MaxElapsed is how long a fill may go without progress before it gives
	// up. Default 2m.
	MaxElapsed time.Duration
	// InitialBackoff is the first pause between attempts; it doubles after
	// every attempt. Default 250ms.
	InitialBackoff time.Duration
	// MaxBackoff caps the pause. Default 10s.
	MaxBackoff time.Duration
}

// Options configure a Proxy. Zero values take the defaults documented on
// each field.
type Options struct {
	// Segments splits large downloads over several connections.
	Segments Segments
	// Rules say how a request URL is keyed (signature parameters left out,
	// digests, immutable paths). Nil applies none: a URL is its key.
	Rules *keyrule.Rules
	// Store is the cache; required.
	Store *cache.Store
	// Transport sends upstream requests. Default NewTransport(). Its
	// connections are checked against Access and Self when dialled (see
	// guardTransport); a given *http.Transport is cloned for that.
	Transport http.RoundTripper
	// Retry bounds resumption of failed upstream bodies.
	Retry Retry
	// IdleTimeout is how long an upstream body may send nothing before it
	// counts as dropped (and is resumed). It is never longer than
	// Retry.MaxElapsed: a stall past the window is given up at the
	// window. Default 30s.
	IdleTimeout time.Duration
	// QuickAbort decides what happens to a download when its last client
	// leaves. The zero value stops it and keeps the bytes so far.
	QuickAbort QuickAbort
	// Name is our pseudonym in Via. Default "resumeproxy".
	Name string
	// Logger receives events. Default slog.Default().
	Logger *slog.Logger
	// MITM, when set, intercepts HTTPS: see Interception. Default nil:
	// every allowed CONNECT is a plain tunnel.
	MITM *Interception
	// ConnectPorts are the ports a CONNECT may reach; others get 403.
	// Default [443].
	ConnectPorts []int
	// TunnelIdleTimeout closes a tunnel in which no byte moved either way
	// for this long. Default 5m.
	TunnelIdleTimeout time.Duration
	// Access decides who may use the proxy and which upstream addresses it
	// refuses. Default access.Loopback(): clients on this machine only, no
	// credentials, no upstream refused.
	Access *access.Policy
	// Self are the addresses that reach this proxy (access.SelfAddrs of its
	// listener): requests and CONNECTs to them, and dials that resolve to
	// them, would loop and get 508. Default none.
	Self []netip.AddrPort
	// FillAhead is how far a download may run ahead of the fastest client
	// reading it; that far ahead it pauses until a client catches up. It
	// bounds what a client that reads nothing costs. Default 64 MiB.
	FillAhead int64
	// ClientWriteTimeout bounds each write to a client: at most 256 KiB,
	// or a sendfile that makes no progress. A client that takes nothing
	// for this long is cut, and counts as having left (QuickAbort).
	// Default 1m.
	ClientWriteTimeout time.Duration
	// Observer receives what the proxy does: requests, upstream bytes
	// and failures, resumes (the metrics and the status page). Default
	// NopObserver.
	Observer Observer
	// AccessLog receives one line per client request (accesslog.go).
	// Default Logger; a handler that drops everything turns it off.
	AccessLog *slog.Logger
	// Admin serves requests addressed to the proxy itself (origin form:
	// the status page, /metrics, /api/..., /ca.pem) and PURGE requests.
	// Default nil: /ca.pem with interception on, else a hint; PURGE is
	// forwarded like any other method.
	Admin http.Handler
}

func (o *Options) setDefaults() {
	r := &o.Retry
	r.Attempts = cmp.Or(r.Attempts, 8)
	r.MaxElapsed = cmp.Or(r.MaxElapsed, 2*time.Minute)
	r.InitialBackoff = cmp.Or(r.InitialBackoff, 250*time.Millisecond)
	r.MaxBackoff = cmp.Or(r.MaxBackoff, 10*time.Second)
	o.IdleTimeout = cmp.Or(o.IdleTimeout, 30*time.Second)
	o.QuickAbort.MaxTime = cmp.Or(o.QuickAbort.MaxTime, 10*time.Minute)
	o.Name = cmp.Or(o.Name, "resumeproxy")
	if len(o.ConnectPorts) == 0 {
		o.ConnectPorts = []int{443}
	}
	o.TunnelIdleTimeout = cmp.Or(o.TunnelIdleTimeout, 5*time.Minute)
	o.FillAhead = cmp.Or(o.FillAhead, 64<<20)
	sg := &o.Segments
	sg.MinSize = cmp.Or(sg.MinSize, 16<<20)
	sg.PerDownload = cmp.Or(sg.PerDownload, 4)
	sg.PerHost = max(cmp.Or(sg.PerHost, 8), 1)
	o.ClientWriteTimeout = cmp.Or(o.ClientWriteTimeout, time.Minute)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.AccessLog = cmp.Or(o.AccessLog, o.Logger)
	if o.Observer == nil {
		o.Observer = NopObserver{}
	}
}

// NewTransport returns the upstream transport: TLS verified against the
// system roots (SSL_CERT_FILE replaces the system bundle and SSL_CERT_DIR
// the certificate directories, as in Go), no transparent
// decompression (byte offsets must be those of the stored body), and never
// an HTTP_PROXY from the environment (it would usually point back at us).
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           newDialer().DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ReadBufferSize:        upstreamReadBuffer,
	}
}

// newDialer is the dialer of upstream connections.
func newDialer() *net.Dialer {
	return &net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}
}

// upstreamReadBuffer is the transport's read buffer per upstream
// connection. At 32 KiB (Go's default is 4 KiB) the headers and body of a
// small response come in with one read, and reach the client in one Write:
// fewer syscalls on both sides. Large bodies are read past the buffer
// anyway.
const upstreamReadBuffer = 32 << 10

// Proxy is the forward proxy. It is an http.Handler.
type Proxy struct {
	opts  Options
	store *cache.Store
	gp    *goproxy.ProxyHttpServer
	log   *slog.Logger
	bufs  *buffers
	now   func() time.Time

	// access is Options.Access or its default.
	access *access.Policy
	// deniedLog and authLog throttle the log lines about refused clients.
	deniedLog, authLog *access.Throttle

	// mitm serves intercepted connections; nil without Options.MITM.
	mitm *interceptor
	// conns are the tunnels under way.
	conns conns

	// flightsMu guards flights: the cold fetches under way, by key.
	flightsMu sync.Mutex
	flights   map[string]*flight

	// readersMu guards readers: the clients reading each live entry that
	// has a reader or a fill (pace.go).
	readersMu sync.Mutex
	readers   map[*cache.Entry]*readers

	// redirects are the redirects remembered for signatures and digests
	// (redirects.go).
	redirects redirects

	// hosts caps segment connections per host; segMu guards segmenting,
	// the entries whose download a segmenter splits (segment.go).
	hosts      hostSlots
	segMu      sync.Mutex
	segmenting map[*cache.Entry]bool

	// obs is Options.Observer or its default.
	obs Observer
	// exMu guards exchanges: the client requests under way (exchange.go).
	exMu      sync.Mutex
	exchanges map[*exchange]struct{}
	// fills counts the fill goroutines running.
	fills atomic.Int64
}

// New returns a Proxy over opts.Store.
func New(opts Options) *Proxy {
	opts.setDefaults()
	p := &Proxy{opts: opts, store: opts.Store, log: opts.Logger, now: time.Now, flights: map[string]*flight{},
		bufs: newBuffers(), access: cmp.Or(opts.Access, access.Loopback()),
		deniedLog: access.NewThrottle(refusalLogEvery, refusalLogMax),
		authLog:   access.NewThrottle(refusalLogEvery, refusalLogMax),
		readers:   map[*cache.Entry]*readers{}, segmenting: map[*cache.Entry]bool{},
		obs: opts.Observer, exchanges: map[*exchange]struct{}{}}
	p.hosts.perHost = p.opts.Segments.PerHost
	p.opts.Transport = p.guardTransport(opts.Transport)
	gp := goproxy.NewProxyHttpServer()
	gp.KeepAcceptEncoding = true // byte ranges must address the encoded body as stored
	gp.KeepHeader = true         // we remove hop-by-hop fields ourselves, all of them
	if t, ok := p.opts.Transport.(*http.Transport); ok {
		gp.Tr = t
	} else {
		gp.Tr = p.guardTransport(nil).(*http.Transport)
	}
	gp.Logger = slogPrinter{p.log}
	gp.NonproxyHandler = http.HandlerFunc(p.serveNonProxy)
	gp.OnRequest().DoFunc(p.onRequest)
	gp.OnResponse().DoFunc(p.onResponse)
	p.gp = gp
	if opts.MITM != nil {
		p.mitm = p.newInterceptor()
	}
	return p
}

// Shutdown stops taking intercepted connections and tunnels, waits for
// those under way to end or ctx to be done, and then closes what is left.
// Call it after http.Server.Shutdown of the proxy's server, which no
// longer sees connections that became tunnels.
func (p *Proxy) Shutdown(ctx context.Context) error {
	var errs [2]error
	var wg sync.WaitGroup
	if p.mitm != nil {
		wg.Go(func() {
			if errs[0] = p.mitm.srv.Shutdown(ctx); errs[0] != nil {
				_ = p.mitm.srv.Close() // the grace is over: cut the rest
			}
		})
	}
	wg.Go(func() { errs[1] = p.conns.shutdown(ctx) })
	wg.Wait()
	return errors.Join(errs[:]...)
}

// Close closes every intercepted connection and tunnel at once.
func (p *Proxy) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = p.Shutdown(ctx) // a done context: nothing is waited for
	return nil
}

// ServeHTTP serves one client request: the client must be admitted
// (Options.Access), then the request is routed. Proxy requests and
// CONNECTs are observed (exchange.go).
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.observed(w, r, p.serveAdmitted)
}

// serveAdmitted admits r's client, then routes r.
func (p *Proxy) serveAdmitted(w http.ResponseWriter, r *http.Request) {
	r, ok := p.admit(w, r)
	ex := exchangeOf(r)
	if !ok {
		if ex != nil {
			ex.denied.Store(true)
		}
		return
	}
	if ex != nil {
		ex.mu.Lock()
		ex.user = userOf(r.Context())
		ex.mu.Unlock()
	}
	p.route(w, r)
}

// route serves an admitted request: a loop gets 508, a CONNECT is handled
// here, the rest by goproxy. It makes the client's connection reachable
// from response bodies, so that a body that cannot be completed cuts it
// (DESIGN invariant 4).
func (p *Proxy) route(w http.ResponseWriter, r *http.Request) {
	if p.refuseLoop(w, r) {
		return
	}
	rc := http.NewResponseController(w)
	// The previous response on this connection may have left a write
	// deadline (aborter.armWrite); this one starts without.
	_ = rc.SetWriteDeadline(time.Time{})
	if r.Method == http.MethodConnect {
		p.serveConnect(w, r)
		return
	}
	if r.Method == methodPurge && p.opts.Admin != nil {
		p.servePurge(w, r)
		return
	}
	ab := &aborter{w: w, rc: rc, writeTimeout: p.opts.ClientWriteTimeout}
	if ex := exchangeOf(r); ex != nil {
		ex.ab = ab
	}
	p.gp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), aborterKey{}, ab)))
}

// serveNonProxy answers requests addressed to the proxy itself (origin
// form): Options.Admin when set; else /ca.pem with interception on, else a
// hint.
func (p *Proxy) serveNonProxy(w http.ResponseWriter, r *http.Request) {
	if p.opts.Admin != nil {
		p.opts.Admin.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/ca.pem" && p.opts.MITM != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Content-Disposition", `attachment; filename="resumeproxy-ca.pem"`)
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(p.opts.MITM.CAPEM)
		return
	}
	http.Error(w, "resumeproxy is a forward proxy: send absolute-form requests (set http_proxy/https_proxy to this address)", http.StatusBadRequest)
}

// onRequest answers cacheable GETs itself and lets goproxy forward the rest
// through passThrough.
func (p *Proxy) onRequest(req *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return req, errorResponse(req, http.StatusBadRequest, "unsupported URL scheme "+req.URL.Scheme)
	}
	if !isUpgrade(req.Header) {
		policy.RemoveHopByHop(req.Header)
	}
	if policy.RequestUsesCache(req) {
		return req, p.serve(req)
	}
	policy.AddVia(req.Header, p.opts.Name)
	ctx.RoundTripper = goproxy.RoundTripperFunc(p.passThrough)
	return req, nil
}

// onResponse finishes headers of responses goproxy fetched itself.
func (p *Proxy) onResponse(resp *http.Response, ctx *goproxy.ProxyCtx) *http.Response {
	if resp == nil || resp.Header.Get("X-Cache") != "" {
		return resp
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		policy.RemoveHopByHop(resp.Header)
	}
	policy.AddVia(resp.Header, p.opts.Name)
	resp.Header.Set("X-Cache", "MISS")
	return resp
}

// passThrough forwards a request the cache does not handle. An upstream
// failure becomes a 502/504 instead of goproxy's 500, and a body that fails
// mid-way cuts the client connection.
func (p *Proxy) passThrough(req *http.Request, ctx *goproxy.ProxyCtx) (*http.Response, error) {
	markPass(req)
	resp, err := p.opts.Transport.RoundTrip(req)
	if err != nil {
		p.log.Warn("upstream request failed", "url", clip(req.URL.Redacted()), "err", clipErr(err))
		p.upstreamFailed(UpstreamDial, req.URL, err)
		return upstreamErrorResponse(req, err), nil
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body = &countedBody{ReadCloser: resp.Body, obs: p.obs}
	}
	if err := policy.CheckPartialAnswer(req.Header.Get("Range"), resp); err != nil {
		return p.refuseAnswer(req, resp, nil, err), nil
	}
	resp.Body = &abortOnError{ReadCloser: resp.Body, client: clientOf(req), bufs: p.bufs, log: p.log}
	return resp, nil
}

func isUpgrade(h http.Header) bool {
	return h.Get("Upgrade") != "" && strings.Contains(strings.ToLower(h.Get("Connection")), "upgrade")
}

// slogPrinter adapts goproxy's Printf logger to slog.
type slogPrinter struct{ l *slog.Logger }

func (s slogPrinter) Printf(format string, v ...any) {
	s.l.Debug("goproxy", "msg", clip(strings.TrimSpace(fmt.Sprintf(format, v...))))
}

// NewServer returns the HTTP server for p with the limits resumeproxy runs
// with: bounded header size (larger requests get 431) and header read time.
func NewServer(p *Proxy) *http.Server {
	return newHTTPServer(p, p.log)
}

// newHTTPServer is a server with resumeproxy's limits, for clients and for
// intercepted connections alike.
func newHTTPServer(h http.Handler, l *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(serverLog{l}, "", 0),
	}
}

// serverLog takes net/http's server log lines. Most are about clients
// (bad TLS, closed connections) and go to debug; a handler that panicked
// is a bug of ours, and its stack goes out as an error.
type serverLog struct{ l *slog.Logger }

func (s serverLog) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	if strings.HasPrefix(line, "http: panic serving") {
		s.l.Error("handler panicked; connection closed", "log", line)
	} else {
		s.l.Debug("http server", "log", clip(line))
	}
	return len(p), nil
}
