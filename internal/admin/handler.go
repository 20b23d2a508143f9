package admin

import (
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/resumeproxy/resumeproxy/proxy/policy"
)

//go:embed status.html
var statusPage []byte

// Options configure a Handler. Proxy, Cache and Stats are required.
type Options struct {
	Proxy ProxyView
	Cache CacheView
	Stats *Stats
	// Allowed reports whether a client address may use the proxy, and so
	// read these pages (the access policy's allow). Nil allows loopback
	// clients only.
	Allowed func(netip.Addr) bool
	// Token, when set, lets a client that sends "Authorization: Bearer
	// TOKEN" change the cache (purge, verify) from beyond loopback.
	// Loopback clients need none. Default "": loopback clients only.
	Token string
	// CAPEM is the interception CA's certificate, served at /ca.pem; nil
	// without interception.
	CAPEM []byte
	// CacheDir and Version are shown on the status page, and let a
	// command check that it talks to the proxy of its cache.
	CacheDir, Version string
	// Logger receives purges and verifications. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Handler serves the admin surface: the status page (/), /healthz,
// /metrics, /api/..., /ca.pem, and PURGE requests. Every request needs a
// client Allowed may use the proxy; a change (purge, verify) needs a
// loopback client or the token, and never comes from another site's page.
type Handler struct {
	opts    Options
	census  *census
	reg     *prometheus.Registry
	metrics http.Handler
	rates   rates
	mux     *http.ServeMux
}

// New returns the admin Handler over opts.
func New(opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Allowed == nil {
		opts.Allowed = netip.Addr.IsLoopback
	}
	h := &Handler{opts: opts, census: &census{cache: opts.Cache, now: opts.Now}, rates: rates{last: map[string]sample{}}}
	h.reg = NewRegistry(opts.Stats, opts.Proxy, h.census, opts.Version)
	h.metrics = promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{ErrorLog: slogLogger{opts.Logger}})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.page)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.Handle("GET /metrics", h.metrics)
	mux.HandleFunc("GET /ca.pem", h.caPEM)
	mux.HandleFunc("GET /api/info", h.info)
	mux.HandleFunc("GET /api/status", h.status)
	mux.HandleFunc("GET /api/entries", h.entries)
	mux.HandleFunc("DELETE /api/entries", h.change(h.deleteEntry))
	mux.HandleFunc("POST /api/purge", h.change(h.purge))
	mux.HandleFunc("POST /api/verify", h.change(h.verify))
	h.mux = mux
	return h
}

// Registry returns the metrics registry (tests read it).
func (h *Handler) Registry() *prometheus.Registry { return h.reg }

// ServeHTTP checks the client, then serves the page, API call or PURGE.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.opts.Allowed(clientAddr(r)) {
		http.Error(w, "resumeproxy: this client's address is not allowed to use the proxy (allow)", http.StatusForbidden)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method == "PURGE" {
		h.change(h.purgeMethod)(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// change wraps a handler that changes the cache: it needs a loopback
// client or the token, and a request a browser did not send on another
// site's behalf (Sec-Fetch-Site, Origin: a page elsewhere must not purge
// through a browser on this machine).
func (h *Handler) change(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h.mayChange(r); err != nil {
			http.Error(w, "resumeproxy: "+err.Error(), http.StatusForbidden)
			return
		}
		next(w, r)
	}
}

// mayChange returns why r may not change the cache, nil when it may.
func (h *Handler) mayChange(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return errors.New("changes are refused from other sites' pages")
	}
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || !strings.EqualFold(u.Host, r.Host) {
			return errors.New("changes are refused from other sites' pages")
		}
	}
	if clientAddr(r).IsLoopback() {
		return nil
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if h.opts.Token != "" && ok && subtle.ConstantTimeCompare([]byte(tok), []byte(h.opts.Token)) == 1 {
		return nil
	}
	return errors.New("changing the cache needs a client on this machine or the admin token (admin_token; Authorization: Bearer TOKEN)")
}

// clientAddr is the address of r's client; the zero Addr when unknown.
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (h *Handler) page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Everything is inline: no request leaves for other hosts.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:")
	_, _ = w.Write(statusPage)
}

func (h *Handler) caPEM(w http.ResponseWriter, _ *http.Request) {
	if h.opts.CAPEM == nil {
		http.Error(w, "resumeproxy: interception is off: there is no CA", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="resumeproxy-ca.pem"`)
	_, _ = w.Write(h.opts.CAPEM)
}

// Info is /api/info: which proxy this is.
type Info struct {
	Version  string `json:"version"`
	CacheDir string `json:"cache_dir"`
}

func (h *Handler) info(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Info{Version: h.opts.Version, CacheDir: h.opts.CacheDir})
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // the client left: nothing to do
}

// apiError answers a JSON error.
func apiError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// purgeRequest is the body of POST /api/purge: one URL or a prefix.
type purgeRequest struct {
	URL    string `json:"url,omitempty"`
	Prefix string `json:"prefix,omitempty"`
}

// PurgeResult is the answer to a purge: the keys removed.
type PurgeResult struct {
	Purged []string `json:"purged"`
}

func (h *Handler) purge(w http.ResponseWriter, r *http.Request) {
	var req purgeRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, fmt.Errorf("purge: want {\"url\": ...} or {\"prefix\": ...}: %w", err))
		return
	}
	switch {
	case req.URL != "" && req.Prefix == "":
		h.purgeURL(w, req.URL)
	case req.Prefix != "" && req.URL == "":
		keys, err := h.opts.Cache.PurgePrefix(req.Prefix)
		h.opts.Logger.Info("purged by prefix", "prefix", req.Prefix, "entries", len(keys), "client", r.RemoteAddr)
		if err != nil {
			apiError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, PurgeResult{Purged: nonNil(keys)})
	default:
		apiError(w, http.StatusBadRequest, errors.New("purge: give url or prefix"))
	}
}

func (h *Handler) deleteEntry(w http.ResponseWriter, r *http.Request) {
	h.purgeURL(w, r.URL.Query().Get("url"))
}

// purgeURL purges the entry of the absolute URL raw.
func (h *Handler) purgeURL(w http.ResponseWriter, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		apiError(w, http.StatusBadRequest, fmt.Errorf("purge: %q is not an absolute URL", raw))
		return
	}
	key := policy.CacheKey(u)
	ok, err := h.opts.Cache.Purge(key)
	if err != nil {
		apiError(w, http.StatusInternalServerError, err)
		return
	}
	res := PurgeResult{Purged: []string{}}
	if ok {
		res.Purged = append(res.Purged, key)
		h.opts.Logger.Info("purged", "key", key)
	}
	writeJSON(w, http.StatusOK, res)
}

// purgeMethod answers Squid's "PURGE URL": 200 when it was cached, 404
// when not.
func (h *Handler) purgeMethod(w http.ResponseWriter, r *http.Request) {
	if !r.URL.IsAbs() {
		http.Error(w, "resumeproxy: PURGE needs an absolute URL (PURGE http://host/path)", http.StatusBadRequest)
		return
	}
	key := policy.CacheKey(r.URL)
	ok, err := h.opts.Cache.Purge(key)
	switch {
	case err != nil:
		http.Error(w, "resumeproxy: purge: "+err.Error(), http.StatusInternalServerError)
	case !ok:
		http.Error(w, "resumeproxy: not in the cache: "+key, http.StatusNotFound)
	default:
		h.opts.Logger.Info("purged", "key", key, "client", r.RemoteAddr)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintf(w, "purged %s\n", key)
	}
}

// VerifyResult is the answer of POST /api/verify.
type VerifyResult struct {
	Entries int        `json:"entries"`
	Blocks  int        `json:"blocks"`
	Bad     int        `json:"bad"`
	Dropped []BadBlock `json:"dropped"`
	Error   string     `json:"error,omitempty"`
}

// BadBlock is a block verify dropped.
type BadBlock struct {
	URL   string `json:"url"`
	Block int64  `json:"block"`
}

func (h *Handler) verify(w http.ResponseWriter, _ *http.Request) {
	var res VerifyResult
	res.Dropped = []BadBlock{}
	rep, err := h.opts.Cache.Verify(func(key string, block int64) {
		res.Dropped = append(res.Dropped, BadBlock{URL: key, Block: block})
	})
	res.Entries, res.Blocks, res.Bad = rep.Entries, rep.Blocks, rep.Bad
	h.opts.Logger.Info("verified the cache", "entries", rep.Entries, "blocks", rep.Blocks, "bad", rep.Bad, "err", err)
	status := http.StatusOK
	if err != nil {
		res.Error, status = err.Error(), http.StatusInternalServerError
	}
	writeJSON(w, status, res)
}

// nonNil is s, or an empty slice for nil (JSON [] rather than null).
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// queryInt reads a non-negative integer query parameter, def when absent
// or malformed.
func queryInt(r *http.Request, name string, def int) int {
	n, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil || n < 0 {
		return def
	}
	return n
}

// slogLogger adapts slog to promhttp's error log.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Println(v ...any) { s.l.Warn("metrics", "err", fmt.Sprint(v...)) }
