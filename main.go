// Command resumeproxy is a forward HTTP proxy that makes every download
// resumable: it keeps the bytes of interrupted downloads and fetches only
// the rest, with Range and If-Range. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/internal/config"
	"github.com/resumeproxy/resumeproxy/proxy"
)

// shutdownGrace bounds how long SIGTERM waits for responses in flight.
const shutdownGrace = 10 * time.Second

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "resumeproxy:", err)
	}
	os.Exit(exitCode(err))
}

// usageError is a mistake in the command line or the configuration, which
// the operator must fix before anything can run: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCode is 0 for success and --help, 2 for a usage or configuration
// error, 1 for anything else.
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		return 2
	}
	return 1
}

// synopsis is the command line, as --help shows it.
const synopsis = `Usage: resumeproxy [flags]
       resumeproxy ca init [--dir DIR] | ca cert [--dir DIR]
       resumeproxy verify [flags]
       resumeproxy ls [--partial] [flags] [PATTERN]
       resumeproxy purge [flags] URL | --prefix PREFIX
       resumeproxy passwd [--cost N] [USER]
       resumeproxy rules test [--config FILE] URL
       resumeproxy version
Each command explains itself with --help.
`

// run parses args, serves until SIGINT/SIGTERM, then shuts down cleanly;
// the subcommands do their one job instead.
func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "verify":
			return runVerify(args[1:], stdout, stderr)
		case "ca":
			return runCA(args[1:], stdout, stderr)
		case "passwd":
			return runPasswd(args[1:], os.Stdin, stdout, stderr)
		case "ls":
			return runLs(args[1:], stdout, stderr)
		case "purge":
			return runPurge(args[1:], stdout, stderr)
		case "version":
			return runVersion(args[1:], stdout, stderr)
		case "help":
			_, err := io.WriteString(stdout, synopsis)
			return err
		case "rules":
			return runRules(args[1:], stdout, stderr)
		}
	}
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	pol, err := accessPolicy(cfg)
	if err != nil {
		return err
	}
	mitm, err := loadInterception(cfg.MITM, time.Now())
	if err != nil {
		return err
	}
	rules, err := cfg.KeyRules()
	if err != nil {
		return usageError{err} // Validate has checked them: a mistake of the config
	}
	log := newLogger(cfg, stderr)
	// Before anything can announce the proxy: a SIGTERM sent as soon as
	// the "serving" line appears (a script, systemd) must shut it down
	// gracefully, not kill it with the default action.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	store, err := openCache(cfg, cache.Options{
		CheckpointBytes: int64(cfg.CheckpointInterval),
		SyncBytes:       int64(cfg.SyncInterval),
		MaxSize:         int64(cfg.MaxSize), // 0: automatic, as both document
		MaxObjectSize:   int64(cfg.MaxObjectSize),
		PartialTTL:      cfg.PartialTTL,
		Logger:          log,
	}, func(aside string, removed int) {
		log.Warn("the cache index was damaged: moved aside, starting with an empty cache", "moved_to", aside, "body_files_removed", removed)
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		store.Close()
		return fmt.Errorf("listen: %w", err)
	}
	self, err := selfAddrs(ln.Addr())
	if err != nil {
		ln.Close()
		store.Close()
		return err
	}
	var adminLn net.Listener
	if cfg.Admin != "" {
		if adminLn, err = net.Listen("tcp", cfg.Admin); err != nil {
			ln.Close()
			store.Close()
			return fmt.Errorf("listen on the admin address: %w", err)
		}
	}
	adm := newAdminSurface(cfg, store, pol, mitm, log)
	p := proxy.New(proxy.Options{
		Store: store,
		Rules: rules,
		Retry: proxy.Retry{
			Attempts:       cfg.Upstream.Retries,
			MaxElapsed:     cfg.Upstream.RetryWindow,
			InitialBackoff: cfg.Upstream.BackoffInitial,
			MaxBackoff:     cfg.Upstream.BackoffMax,
		},
		IdleTimeout: cfg.Upstream.IdleTimeout,
		QuickAbort: proxy.QuickAbort{
			FinishBelow:        int64(cfg.QuickAbort.FinishBelow),
			FinishAbovePercent: cfg.QuickAbort.FinishAbovePercent,
			MaxTime:            cfg.QuickAbort.MaxTime,
		},
		Logger:            log,
		MITM:              mitm,
		ConnectPorts:      cfg.ConnectPorts,
		TunnelIdleTimeout: cfg.TunnelIdleTimeout,
		Access:            pol,
		Self:              self,
		FillAhead:         int64(cfg.FillAhead),
		Segments: proxy.Segments{
			MinSize:     int64(cfg.Segments.MinSize),
			PerDownload: cfg.Segments.PerDownload,
			PerHost:     cfg.Segments.PerHost,
		},
		ClientWriteTimeout: cfg.ClientWriteTimeout,
		Observer:           adm.stats,
		Admin:              adm.handler,
	})
	adm.proxy.Proxy = p
	srv := proxy.NewServer(p)
	stopAdmin := func(context.Context) {}
	if adminLn != nil {
		stopAdmin = serveAdmin(adminLn, adm.handler, log)
		log.Info("admin pages serving", "admin", adminLn.Addr().String())
	}
	log.Info("resumeproxy serving", "listen", ln.Addr().String(), "cache_dir", cfg.CacheDir,
		"mitm", mitm != nil, "connect_ports", cfg.ConnectPorts, "allow", pol.Allow.String(),
		"users", len(cfg.Auth.Users), "private_upstreams_refused", pol.GuardUpstreams)
	warnUnreachable(log, cfg, pol)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		if serr := srv.Shutdown(sctx); serr != nil {
			srv.Close()
		}
		_ = p.Shutdown(sctx) // tunnels and intercepted connections: cut when the grace ends
		stopAdmin(sctx)
		cancel()
	}
	p.Close()
	if cerr := store.Close(); cerr != nil {
		log.Error("closing cache", "err", cerr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// parseFlags applies defaults, then --config, then the other flags. Its
// errors are usageErrors.
func parseFlags(args []string, stderr io.Writer) (config.Config, error) {
	cfg, err := parseServeFlags(args, stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		err = usageError{err}
	}
	return cfg, err
}

// serveFlags are the proxy's own flags (verify takes them too).
type serveFlags struct {
	config, listen, cacheDir, caCert, caKey, ports, admin *string
	mitm, resetIndex                                      *bool
}

// newServeFlagSet defines the proxy's flags; a test checks that the
// systemd unit's ExecStart uses only these.
func newServeFlagSet(stderr io.Writer) (*flag.FlagSet, *serveFlags) {
	fs := flag.NewFlagSet("resumeproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs, &serveFlags{
		config:   fs.String("config", "", "YAML configuration `file` (see config.example.yaml)"),
		listen:   fs.String("listen", "", "address to serve on (default 127.0.0.1:3128)"),
		cacheDir: fs.String("cache-dir", "", "cache `directory` (default: resumeproxy under the user cache dir)"),
		mitm:     fs.Bool("mitm", false, "intercept HTTPS with your own CA (see resumeproxy ca init)"),
		caCert:   fs.String("ca-cert", "", "CA certificate `PEM` for --mitm (default: the one ca init wrote)"),
		caKey:    fs.String("ca-key", "", "CA private key `PEM` for --mitm (default: the one ca init wrote)"),
		ports:    fs.String("connect-ports", "", "comma-separated `ports` a CONNECT may reach (default 443)"),
		admin:    fs.String("admin", "", "also serve the status page, /metrics and /api on `ADDR` (they are always on --listen)"),
		resetIndex: fs.Bool("reset-index", false, "if the cache index is damaged, move it aside (to index.damaged-TIME in the cache\n"+
			"directory) and start with an empty cache, removing the body files nothing can vouch for;\n"+
			"a healthy index is left alone"),
	}
}

func parseServeFlags(args []string, stderr io.Writer) (config.Config, error) {
	fs, f := newServeFlagSet(stderr)
	if err := fs.Parse(args); err != nil {
		return config.Config{}, err
	}
	if fs.NArg() > 0 {
		return config.Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := config.Default()
	if *f.config != "" {
		var err error
		if cfg, err = config.Load(*f.config); err != nil {
			return cfg, err
		}
	}
	if *f.listen != "" {
		cfg.Listen = *f.listen
	}
	if *f.cacheDir != "" {
		cfg.CacheDir = *f.cacheDir
	}
	if *f.admin != "" {
		cfg.Admin = *f.admin
	}
	cfg.MITM.Enabled = cfg.MITM.Enabled || *f.mitm
	if *f.caCert != "" || *f.caKey != "" {
		cfg.MITM.CACert, cfg.MITM.CAKey = *f.caCert, *f.caKey
	}
	cfg.ResetIndex = *f.resetIndex
	if *f.ports != "" {
		p, err := config.ParsePorts(*f.ports)
		if err != nil {
			return cfg, fmt.Errorf("--connect-ports: %w", err)
		}
		cfg.ConnectPorts = p
	}
	return cfg, cfg.Validate()
}

func levelOf(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// openCache opens the cache under cfg.CacheDir. A damaged index
// (cache.ErrIndexDamaged) is moved aside with --reset-index, and the cache
// starts empty (reset tells what happened); without it, the error says
// how to get out.
func openCache(cfg config.Config, opts cache.Options, reset func(aside string, removed int)) (*cache.Store, error) {
	store, err := cache.Open(cfg.CacheDir, opts)
	if !errors.Is(err, cache.ErrIndexDamaged) {
		return store, err
	}
	if !cfg.ResetIndex {
		return nil, fmt.Errorf("%w\nTo start over with an empty cache, run again with --reset-index: it moves the damaged index aside and removes the body files", err)
	}
	aside, removed, rerr := cache.ResetIndex(cfg.CacheDir, time.Now())
	if rerr != nil {
		return nil, errors.Join(err, rerr)
	}
	reset(aside, removed)
	return cache.Open(cfg.CacheDir, opts)
}

// runVerify checks every stored block against its checksum, drops the bad
// ones (they are fetched again when next asked for) and prints a report.
// While a proxy runs on the cache, the proxy does it, asked through its
// admin API (openCacheOps).
func runVerify(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	store, err := openCacheOps(cfg, stdout, stderr)
	if err != nil {
		return err
	}
	rep, verr := store.Verify(func(key string, block int64) {
		fmt.Fprintf(stdout, "bad block %d (bytes %d-%d) of %s: dropped\n",
			block, block*cache.BlockSize, (block+1)*cache.BlockSize-1, key)
	})
	fmt.Fprintf(stdout, "verified %d entries, %d blocks: %d bad (dropped; fetched again when next asked for)\n", rep.Entries, rep.Blocks, rep.Bad)
	return errors.Join(verr, store.Close())
}
