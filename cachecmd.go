package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/internal/config"
	"github.com/resumeproxy/resumeproxy/proxy/policy"
)

// cacheOps is what ls, purge and verify do to a cache. A *cache.Store
// opened directly is one; a client of the running proxy's admin API
// (*admin.Client) is the other, chosen by openCacheOps.
type cacheOps interface {
	List(fn func(cache.Info) bool) error
	Purge(key string) (bool, error)
	PurgePrefix(prefix string) ([]string, error)
	Verify(bad func(key string, block int64)) (cache.VerifyReport, error)
	Close() error
}

// errProxyRunning is openDirect's answer when a proxy holds the cache
// directory.
var errProxyRunning = errors.New("a resumeproxy is running on this cache")

// openCacheOps gives ls, purge and verify their way to the cache: the
// cache itself, opened directly, when no proxy runs on it; else, since the
// running proxy holds it (errProxyRunning), that proxy's admin API, found
// at adminAddr and checked to serve the same cache directory.
func openCacheOps(cfg config.Config, stdout, stderr io.Writer) (cacheOps, error) {
	store, err := openDirect(cfg, stdout, stderr)
	if errors.Is(err, errProxyRunning) {
		return dialAdmin(adminAddr(cfg), cfg)
	}
	return store, err
}

// openDirect opens the cache under cfg.CacheDir for a command that works
// on it directly (ls, purge, verify). It is the one place that tells
// whether a proxy is running on it: the proxy holds the directory's lock
// for as long as it runs, so Open fails with cache.ErrLocked, which
// becomes errProxyRunning with a message that says what to do. A missing
// directory is an error too, rather than an empty cache created by
// looking. With --reset-index (verify), a damaged index is moved aside,
// said on stdout; errors go to stderr.
func openDirect(cfg config.Config, stdout, stderr io.Writer) (*cache.Store, error) {
	if _, err := os.Stat(cfg.CacheDir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no cache at %s (nothing was cached there; --cache-dir or --config name another)", cfg.CacheDir)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	// The configured limits, not the automatic ones: the store may evict
	// while open, and must do as the proxy would.
	store, err := openCache(cfg, cache.Options{
		MaxSize:       int64(cfg.MaxSize),
		MaxObjectSize: int64(cfg.MaxObjectSize),
		PartialTTL:    cfg.PartialTTL,
		Logger:        log,
	}, func(aside string, removed int) {
		fmt.Fprintf(stdout, "the index was damaged: moved aside to %s; %d body files removed; the cache is empty\n", aside, removed)
	})
	if errors.Is(err, cache.ErrLocked) {
		return nil, fmt.Errorf("%w in %s, and holds it", errProxyRunning, cfg.CacheDir)
	}
	return store, err
}

// cacheFlags adds --config, --cache-dir and --admin to fset; the function
// returned gives the configuration they select once fset is parsed (the
// defaults, then the file, then the flags), validated.
func cacheFlags(fset *flag.FlagSet) func() (config.Config, error) {
	cfgPath := fset.String("config", "", "YAML configuration `file` (see config.example.yaml)")
	cacheDir := fset.String("cache-dir", "", "cache `directory` (default: the configured one, else resumeproxy under the user cache dir)")
	adminAt := fset.String("admin", "", "a running proxy's admin API at `ADDR` (default: admin, else listen, in --config)")
	return func() (config.Config, error) {
		cfg := config.Default()
		if *cfgPath != "" {
			var err error
			if cfg, err = config.Load(*cfgPath); err != nil {
				return cfg, usageError{err}
			}
		}
		if *cacheDir != "" {
			cfg.CacheDir = *cacheDir
		}
		if *adminAt != "" {
			cfg.Admin = *adminAt
		}
		if err := cfg.Validate(); err != nil {
			return cfg, usageError{err}
		}
		return cfg, nil
	}
}

// parseCommand parses args with fset, whose usage prints synopsis and the
// flags; its errors are usageErrors, but --help.
func parseCommand(fset *flag.FlagSet, synopsis string, args []string, stderr io.Writer) error {
	fset.SetOutput(stderr)
	fset.Usage = func() {
		fmt.Fprintf(stderr, "%s\nFlags:\n", synopsis)
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}

const lsSynopsis = `usage: resumeproxy ls [--partial] [--config FILE] [--cache-dir DIR] [--admin ADDR] [PATTERN]

Lists what the cache holds: state (complete or partial), size, bytes stored,
last use and URL. PATTERN selects URLs: a glob when it has * or ? (* also
matches /), else a substring. --partial lists only the downloads a next
request would resume. While a proxy runs on the cache, ls asks it through
its admin API (at --admin, else admin, else listen in --config).
`

// runLs runs "resumeproxy ls".
func runLs(args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("resumeproxy ls", flag.ContinueOnError)
	partial := fset.Bool("partial", false, "list only partial downloads")
	loadCfg := cacheFlags(fset)
	if err := parseCommand(fset, lsSynopsis, args, stderr); err != nil {
		return err
	}
	if fset.NArg() > 1 {
		return usageError{fmt.Errorf("ls: one PATTERN at most, got %q", fset.Args())}
	}
	match := matcher(fset.Arg(0))
	cfg, err := loadCfg()
	if err != nil {
		return err
	}
	ops, err := openCacheOps(cfg, stdout, stderr)
	if err != nil {
		return err
	}
	t := newListing(stdout)
	err = ops.List(func(i cache.Info) bool {
		if match(i.Key) && (!*partial || !i.Complete) {
			t.add(i)
		}
		return true
	})
	return errors.Join(err, t.flush(), ops.Close())
}

// matcher returns whether a URL matches pattern: a glob when it has * or
// ? (* any run of characters, / included: URLs are not paths; ? one
// character), else a substring. "" matches everything.
func matcher(pattern string) func(string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return func(s string) bool { return strings.Contains(s, pattern) }
	}
	var re strings.Builder
	re.WriteString(`^(?s:`)
	for _, r := range pattern {
		switch r {
		case '*':
			re.WriteString(`.*`)
		case '?':
			re.WriteString(`.`)
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString(`)$`)
	return regexp.MustCompile(re.String()).MatchString // quoted: always compiles
}

// listing is ls's table: aligned columns, then a summary line.
type listing struct {
	w                  *tabwriter.Writer
	out                io.Writer
	n, partial, stored int64
}

func newListing(out io.Writer) *listing {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "STATE\tSIZE\tSTORED\tLAST USE\tURL")
	return &listing{w: w, out: out}
}

// maxShownURL bounds a URL that ls and purge print; longer ones (over
// 4 KiB, which the index keeps under their hash) are clipped, their start
// being enough for purge --prefix.
const maxShownURL = 4 << 10

// shownURL is key as ls and purge print it.
func shownURL(key string) string {
	if len(key) <= maxShownURL {
		return key
	}
	return fmt.Sprintf("%s… (%d bytes, hashed key)", key[:120], len(key))
}

// add writes one row.
func (l *listing) add(i cache.Info) {
	state, size, stored := "complete", "?", humanSize(i.Stored)
	if i.Size >= 0 {
		size = humanSize(i.Size)
	}
	if !i.Complete {
		state = "partial"
		l.partial++
		if i.Size > 0 {
			stored += fmt.Sprintf(" (%d%%)", i.Stored*100/i.Size)
		}
	}
	l.n++
	l.stored += i.Stored
	fmt.Fprintf(l.w, "%s\t%s\t%s\t%s\t%s\n", state, size, stored, i.LastUse.Local().Format(time.DateTime), shownURL(i.Key))
}

// flush writes the table and the summary.
func (l *listing) flush() error {
	if err := l.w.Flush(); err != nil {
		return err
	}
	entries := "entries"
	if l.n == 1 {
		entries = "entry"
	}
	_, err := fmt.Fprintf(l.out, "%d %s, %d partial, %s stored\n", l.n, entries, l.partial, humanSize(l.stored))
	return err
}

// humanSize writes n bytes in binary units, one decimal: 512 B, 1.5 MiB.
func humanSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/1024, 0
	for v >= 1024 && unit < 5 {
		v /= 1024
		unit++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[unit])
}

const purgeSynopsis = `usage: resumeproxy purge [--config FILE] [--cache-dir DIR] [--admin ADDR] URL
       resumeproxy purge [--config FILE] [--cache-dir DIR] [--admin ADDR] --prefix PREFIX

Removes a URL from the cache, or every URL that starts with PREFIX (keys are
URLs with the scheme and host in lower case and no default port): the next
request fetches it afresh. Exit status 1 when nothing matched. While a
proxy runs on the cache, purge asks it through its admin API (at --admin,
else admin, else listen in --config; from beyond loopback it sends
admin_token).
`

// runPurge runs "resumeproxy purge".
func runPurge(args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("resumeproxy purge", flag.ContinueOnError)
	prefix := fset.String("prefix", "", "purge every URL that starts with `PREFIX`")
	loadCfg := cacheFlags(fset)
	if err := parseCommand(fset, purgeSynopsis, args, stderr); err != nil {
		return err
	}
	key, err := purgeTarget(fset.Args(), *prefix)
	if err != nil {
		return err
	}
	cfg, err := loadCfg()
	if err != nil {
		return err
	}
	ops, err := openCacheOps(cfg, stdout, stderr)
	if err != nil {
		return err
	}
	err = purge(ops, key, *prefix, stdout)
	return errors.Join(err, ops.Close())
}

// purgeTarget checks purge's arguments: one absolute URL, made the key
// the proxy would store it under, or --prefix alone.
func purgeTarget(args []string, prefix string) (key string, err error) {
	switch {
	case prefix != "" && len(args) == 0:
		return "", nil
	case prefix != "" || len(args) != 1:
		return "", usageError{errors.New("purge: give one URL, or --prefix PREFIX")}
	}
	u, err := url.Parse(args[0])
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", usageError{fmt.Errorf("purge: %q is not an absolute URL (like http://host/path)", args[0])}
	}
	return policy.CacheKey(u), nil
}

// purge purges key, or every key under prefix when key is "", and says
// what went.
func purge(ops cacheOps, key, prefix string, stdout io.Writer) error {
	if key != "" {
		ok, err := ops.Purge(key)
		if err == nil && !ok {
			err = fmt.Errorf("purge: not in the cache: %s", shownURL(key))
		}
		if ok {
			fmt.Fprintf(stdout, "purged %s\n", shownURL(key))
		}
		return err
	}
	keys, err := ops.PurgePrefix(prefix)
	for _, k := range keys {
		fmt.Fprintf(stdout, "purged %s\n", shownURL(k))
	}
	if err == nil && len(keys) == 0 {
		err = fmt.Errorf("purge: nothing in the cache starts with %s", prefix)
	}
	return err
}
