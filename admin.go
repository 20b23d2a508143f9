package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/internal/access"
	"github.com/resumeproxy/resumeproxy/internal/admin"
	"github.com/resumeproxy/resumeproxy/internal/config"
	"github.com/resumeproxy/resumeproxy/proxy"
)

// newLogger is the proxy's logger: text or JSON lines (log.format) on
// stderr at log_level. The access log lines go through it too.
func newLogger(cfg config.Config, stderr io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: levelOf(cfg.LogLevel)}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(stderr, opts))
	}
	return slog.New(slog.NewTextHandler(stderr, opts))
}

// buildVersion is the module version the binary was built as, "(devel)"
// from a work tree.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return cmp.Or(bi.Main.Version, "(devel)")
	}
	return "(unknown)"
}

// proxyRef lets the admin handler, which the proxy's options carry, read
// the proxy built after it. It is set before anything is served.
type proxyRef struct{ *proxy.Proxy }

// adminSurface is the admin handler, the Stats it reads (the proxy's
// Observer) and the proxy it shows, once set.
type adminSurface struct {
	stats   *admin.Stats
	handler *admin.Handler
	proxy   *proxyRef
}

// newAdminSurface builds the admin surface over store for cfg; its proxy
// is set once built (adminSurface.proxy.Proxy).
func newAdminSurface(cfg config.Config, store *cache.Store, pol *access.Policy, mitm *proxy.Interception, log *slog.Logger) *adminSurface {
	a := &adminSurface{stats: admin.NewStats(time.Now()), proxy: &proxyRef{}}
	var ca []byte
	if mitm != nil {
		ca = mitm.CAPEM
	}
	a.handler = admin.New(admin.Options{
		Proxy:    a.proxy,
		Cache:    store,
		Stats:    a.stats,
		Allowed:  func(ip netip.Addr) bool { return pol.Allowed(ip) == nil },
		Token:    cfg.AdminToken,
		CAPEM:    ca,
		CacheDir: cfg.CacheDir,
		Version:  buildVersion(),
		Logger:   log,
	})
	return a
}

// serveAdmin serves the admin surface on --admin's listener, until
// shutdown is called.
func serveAdmin(ln net.Listener, h http.Handler, log *slog.Logger) (shutdown func(context.Context)) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Error("admin server stopped", "err", err)
		}
	}()
	return func(ctx context.Context) {
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
	}
}

// adminAddr is where a command finds the running proxy's admin API:
// --admin given to the command, else admin in --config, else listen in
// --config (127.0.0.1:3128 by default; an unspecified host meaning this
// machine).
func adminAddr(cfg config.Config) string {
	return cmp.Or(cfg.Admin, cfg.Listen)
}

// dialAdmin returns a client of the running proxy's admin API at addr,
// after checking that the proxy there serves cfg's cache directory: a
// command must never purge another proxy's cache.
func dialAdmin(addr string, cfg config.Config) (*admin.Client, error) {
	c, err := admin.NewClient(addr, cfg.AdminToken)
	if err != nil {
		return nil, err
	}
	info, err := c.Info()
	if err != nil {
		return nil, fmt.Errorf("%w in %s, but its admin API is not reachable at %s (give --admin ADDR, or admin or listen in --config): %v",
			errProxyRunning, cfg.CacheDir, addr, err)
	}
	if !sameDir(info.CacheDir, cfg.CacheDir) {
		return nil, fmt.Errorf("%w in %s, but the proxy at %s serves %s: give its address with --admin ADDR",
			errProxyRunning, cfg.CacheDir, addr, info.CacheDir)
	}
	return c, nil
}

// sameDir reports whether two cache directory names are the same, up to
// a trailing slash.
func sameDir(a, b string) bool {
	return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}
