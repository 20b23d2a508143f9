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
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "resumeproxy:", err)
		os.Exit(1)
	}
}

// run parses args, serves until SIGINT/SIGTERM, then shuts down cleanly;
// "resumeproxy verify" checks the cache instead.
func run(args []string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "verify" {
		return runVerify(args[1:], os.Stdout, stderr)
	}
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: levelOf(cfg.LogLevel)}))
	store, err := cache.Open(cfg.CacheDir, cache.Options{
		CheckpointBytes: int64(cfg.CheckpointInterval),
		SyncBytes:       int64(cfg.SyncInterval),
		MaxSize:         int64(cfg.MaxSize), // 0: automatic, as both document
		PartialTTL:      cfg.PartialTTL,
		Logger:          log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		store.Close()
		return fmt.Errorf("listen: %w", err)
	}
	p := proxy.New(proxy.Options{
		Store: store,
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
		Logger: log,
	})
	srv := proxy.NewServer(p)
	log.Info("resumeproxy serving", "listen", ln.Addr().String(), "cache_dir", cfg.CacheDir)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
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
		cancel()
	}
	if cerr := store.Close(); cerr != nil {
		log.Error("closing cache", "err", cerr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// parseFlags applies defaults, then --config, then the other flags.
func parseFlags(args []string, stderr io.Writer) (config.Config, error) {
	fs := flag.NewFlagSet("resumeproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration `file` (see config.example.yaml)")
	listen := fs.String("listen", "", "address to serve on (default 127.0.0.1:3128)")
	cacheDir := fs.String("cache-dir", "", "cache `directory` (default: resumeproxy under the user cache dir)")
	mitm := fs.Bool("mitm", false, "intercept HTTPS (needs --ca-cert and --ca-key)")
	fs.String("ca-cert", "", "CA certificate `PEM` for --mitm")
	fs.String("ca-key", "", "CA private key `PEM` for --mitm")
	if err := fs.Parse(args); err != nil {
		return config.Config{}, err
	}
	if fs.NArg() > 0 {
		return config.Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *mitm {
		return config.Config{}, errors.New("--mitm: HTTPS interception is not implemented yet; HTTPS passes through as a tunnel")
	}
	cfg := config.Default()
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			return cfg, err
		}
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *cacheDir != "" {
		cfg.CacheDir = *cacheDir
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

// runVerify checks every stored block against its checksum, drops the bad
// ones (they are fetched again when next asked for) and prints a report.
// The proxy must not be running on the same cache directory.
func runVerify(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	// The configured limits, not the automatic ones: the store may evict
	// while open, and must do as the proxy would.
	store, err := cache.Open(cfg.CacheDir, cache.Options{
		MaxSize:    int64(cfg.MaxSize),
		PartialTTL: cfg.PartialTTL,
		Logger:     log,
	})
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
