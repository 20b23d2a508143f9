// Package config loads resumeproxy's YAML configuration: parse, Validate
// (errors name the key), then use. Every field documents its default; a
// missing file or key keeps it.
package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/resumeproxy/resumeproxy/internal/access"
	"github.com/resumeproxy/resumeproxy/internal/hostglob"
	"github.com/resumeproxy/resumeproxy/internal/keyrule"
)

// Config is the whole configuration.
type Config struct {
	// Listen is the address the proxy serves on. Default "127.0.0.1:3128".
	Listen string `yaml:"listen"`
	// CacheDir holds the index and the body files. Default: resumeproxy
	// under the user's cache directory ($XDG_CACHE_HOME or ~/.cache).
	CacheDir string `yaml:"cache_dir"`
	// CheckpointInterval is how many bytes of a download may be written
	// between two checkpoints (commit to the index); a crash of the process
	// loses at most twice this much of a download. Default 4MiB.
	CheckpointInterval Size `yaml:"checkpoint_interval"`
	// SyncInterval is how many bytes of a download may be written between
	// two syncs to disk, which run in the background and never slow it;
	// about this much is lost to a power loss (and found by the block
	// sums). Default 64MiB.
	SyncInterval Size `yaml:"sync_interval"`
	// MaxSize bounds the bytes the cache keeps, counted as the bytes present
	// in the body files (which are sparse: a partial download takes only
	// what it has) and the index records (about a KiB each). Over it, the least recently used downloads, complete or
	// partial, are evicted down to 90%; a download in use is never evicted.
	// 0 means automatic: a quarter of the filesystem holding cache_dir,
	// measured at startup, at least 1GiB and at most 100GiB. Otherwise at
	// least 1MiB. Default 0.
	MaxSize Size `yaml:"max_size"`
	// MaxObjectSize is the largest response stored: a larger one (by its
	// Content-Length, or the total of its Content-Range) is relayed to the
	// client uncached. Nothing an origin declares costs memory in
	// proportion, so this only keeps the cache from taking what it cannot
	// sensibly hold. At least 1. Default 64GiB.
	MaxObjectSize Size `yaml:"max_object_size"`
	// PartialTTL is how long an incomplete download is kept without being
	// requested before it is evicted (checked hourly). Durations take days
	// too (ParseDuration). Default 7d.
	PartialTTL time.Duration `yaml:"partial_ttl"`
	// Upstream configures requests to origin servers.
	Upstream Upstream `yaml:"upstream"`
	// QuickAbort decides what happens to a download its last client left.
	QuickAbort QuickAbort `yaml:"quick_abort"`
	// FillAhead is how far a download may run ahead of the fastest client
	// reading it: that far ahead it pauses until a client catches up
	// (holding its upstream connection for up to upstream.idle_timeout,
	// then asking for the rest by Range). A client that reads nothing
	// costs at most this much plus socket buffers. At least 1MiB.
	// Default 64MiB.
	FillAhead Size `yaml:"fill_ahead"`
	// Segments splits large downloads over several upstream connections.
	Segments Segments `yaml:"segments"`
	// ClientWriteTimeout cuts a client that takes nothing for this long:
	// a write to it (at most 256KiB; a sendfile that makes progress gets
	// more time) that does not complete. It counts as the client leaving,
	// so quick_abort applies. Default 1m.
	ClientWriteTimeout time.Duration `yaml:"client_write_timeout"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// Log configures how log lines, the access log's among them, are
	// written.
	Log Log `yaml:"log"`
	// Admin is a second address serving the status page, /metrics,
	// /healthz and /api/... (--admin), besides origin-form requests to
	// Listen, which always do. The same clients may use it (allow).
	// Default "": none.
	Admin string `yaml:"admin"`
	// AdminToken lets a client beyond loopback change the cache through
	// the admin API and PURGE, sending "Authorization: Bearer TOKEN"; at
	// least 16 characters. Loopback clients need none. Default "": only
	// loopback clients may.
	AdminToken string `yaml:"admin_token"`
	// ConnectPorts are the ports a CONNECT may reach; others get 403, with
	// or without interception (--connect-ports). Default [443].
	ConnectPorts []int `yaml:"connect_ports"`
	// TunnelIdleTimeout closes a CONNECT tunnel in which no byte moved
	// either way for this long. Default 5m.
	TunnelIdleTimeout time.Duration `yaml:"tunnel_idle_timeout"`
	// MITM configures HTTPS interception.
	MITM MITM `yaml:"mitm"`

	// ResetIndex is --reset-index, which is no configuration key: it acts
	// once, when the cache index is found damaged at start. Default false.
	ResetIndex bool `yaml:"-"`
	// Allow are the client networks that may use the proxy, as CIDRs
	// ("192.168.1.0/24") or single addresses; other clients get 403. When
	// Auth.Users is set a client must be in Allow and also authenticate.
	// Default [127.0.0.0/8, ::1/128]: this machine only.
	Allow []string `yaml:"allow"`
	// AllowPrivateUpstreams lets clients reach upstreams on the proxy's
	// own machine or link (loopback, link-local such as 169.254.169.254,
	// unspecified, multicast), which are refused while the proxy serves
	// beyond loopback (Allow reaches past it, or Listen is elsewhere).
	// Default false.
	AllowPrivateUpstreams bool `yaml:"allow_private_upstreams"`
	// Auth configures proxy credentials.
	Auth Auth `yaml:"auth"`
	// Rules are the operator's key rules (keyrule.Spec documents each
	// field), tried in order before the built-in ones; the first that
	// matches a URL decides its key alone. Default none.
	Rules []keyrule.Spec `yaml:"rules"`
	// BuiltinRules turns built-in key rules (signed URLs, digest paths,
	// immutable paths) on or off by name; a name left out stays on, an
	// unknown name is an error. Default: every built-in, true.
	BuiltinRules map[string]bool `yaml:"builtin_rules"`
}

// Log configures the log's format.
type Log struct {
	// Format is text (key=value pairs) or json (one object per line).
	// Default text.
	Format string `yaml:"format"`
}

// Auth configures the credentials clients send in Proxy-Authorization
// (Basic, RFC 7617) on plain requests and CONNECTs.
type Auth struct {
	// Users maps a user name to the bcrypt hash of its password, as
	// `resumeproxy passwd` prints it. Default none: no credentials asked.
	Users map[string]string `yaml:"users"`
}

// MITM configures HTTPS interception: CONNECTs to the selected hosts are
// decrypted with certificates from the operator's CA and served through the
// cache like plain HTTP.
type MITM struct {
	// Enabled turns interception on (--mitm). Default false: every
	// allowed CONNECT is a plain tunnel.
	Enabled bool `yaml:"enabled"`
	// CACert and CAKey are the CA's PEM files (--ca-cert, --ca-key).
	// Default "": the CA that "resumeproxy ca init" wrote (ca.pem and
	// ca-key.pem in resumeproxy under the user's config directory).
	CACert string `yaml:"ca_cert"`
	CAKey  string `yaml:"ca_key"`
	// Hosts are the CONNECT hosts to intercept, as globs ("*.example.com").
	// Default ["*"]: all.
	Hosts []string `yaml:"hosts"`
	// Bypass are hosts tunnelled untouched even when Hosts matches them:
	// clients that pin certificates. Default none.
	Bypass []string `yaml:"bypass"`
	// LeafCache is how many leaf certificates are kept (one per server
	// name; least recently used dropped). Default 1000.
	LeafCache int `yaml:"leaf_cache"`
}

// Upstream configures requests to origin servers and resumption.
type Upstream struct {
	// Retries is how many times in a row a dropped download is retried
	// without receiving a byte before the client is cut. Only failures a
	// retry may mend count (no answer, a dropped or stalled body, 5xx,
	// 429, 408); a final status such as 404 cuts the client at once.
	// Default 8.
	Retries int `yaml:"retries"`
	// RetryWindow is how long a download may go without a byte before it is
	// given up. Default 2m.
	RetryWindow time.Duration `yaml:"retry_window"`
	// BackoffInitial is the first pause between retries (doubling). Default 250ms.
	BackoffInitial time.Duration `yaml:"backoff_initial"`
	// BackoffMax caps the pause between retries. Default 10s.
	BackoffMax time.Duration `yaml:"backoff_max"`
	// IdleTimeout is how long a body may stall before it counts as dropped
	// (and is resumed); never longer than RetryWindow. Default 30s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// QuickAbort decides what happens to a download when its last client
// leaves: by default it stops and its bytes stay cached; these finish it
// in the background instead when little is left.
type QuickAbort struct {
	// FinishBelow finishes a download with at most this much left. Default
	// 0 (never).
	FinishBelow Size `yaml:"finish_below"`
	// FinishAbovePercent finishes a download past this share (0–100) of
	// the file. Default 0 (never).
	FinishAbovePercent float64 `yaml:"finish_above_percent"`
	// MaxTime bounds a background finish. Default 10m.
	MaxTime time.Duration `yaml:"max_time"`
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Listen:             "127.0.0.1:3128",
		CacheDir:           defaultCacheDir(),
		CheckpointInterval: 4 << 20,
		SyncInterval:       64 << 20,
		MaxObjectSize:      64 << 30,
		PartialTTL:         7 * 24 * time.Hour,
		Upstream: Upstream{
			Retries:        8,
			RetryWindow:    2 * time.Minute,
			BackoffInitial: 250 * time.Millisecond,
			BackoffMax:     10 * time.Second,
			IdleTimeout:    30 * time.Second,
		},
		QuickAbort:         QuickAbort{MaxTime: 10 * time.Minute},
		LogLevel:           "info",
		Log:                Log{Format: "text"},
		ConnectPorts:       []int{443},
		TunnelIdleTimeout:  5 * time.Minute,
		MITM:               MITM{Hosts: []string{"*"}, Bypass: []string{}, LeafCache: 1000},
		Allow:              slices.Clone(access.LoopbackCIDRs),
		Auth:               Auth{Users: map[string]string{}},
		FillAhead:          64 << 20,
		Segments:           Segments{MinSize: 16 << 20, PerDownload: 4, PerHost: 8},
		ClientWriteTimeout: time.Minute,
		Rules:              []keyrule.Spec{},
		BuiltinRules:       defaultBuiltinRules(),
	}
}

// Segments configures segmented fills: a large download is fetched as
// several bounded ranged requests at once, each its own span of the body
// file, nearest the reader first, within fill_ahead. Origins that limit
// each connection then serve N times faster; one that ignores ranges gets
// one connection.
type Segments struct {
	// MinSize is the smallest download split (with a known length and a
	// strong validator, or immutable by rule). Default 16MiB.
	MinSize Size `yaml:"min_size"`
	// PerDownload caps the connections of one download; 1 turns
	// segmenting off. Default 4.
	PerDownload int `yaml:"per_download"`
	// PerHost caps segment connections to one host across downloads; a
	// 429 or 503 lowers it for that host for its Retry-After. Default 8.
	PerHost int `yaml:"per_host"`
}

// defaultBuiltinRules turns every built-in key rule on.
func defaultBuiltinRules() map[string]bool {
	m := make(map[string]bool)
	for _, b := range keyrule.Builtins() {
		m[b.Name] = true
	}
	return m
}

// KeyRules compiles Rules and BuiltinRules; its errors name the key at
// fault, as Validate's do.
func (c Config) KeyRules() (*keyrule.Rules, error) {
	return keyrule.New(c.Rules, c.BuiltinRules)
}

func defaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "resumeproxy")
	}
	return filepath.Join(os.TempDir(), "resumeproxy")
}

// Load reads path over the defaults. Unknown keys and values of the wrong
// type are errors that name the key's path, what it takes and the line;
// every one is reported, one per line.
func Load(path string) (Config, error) {
	c := Default()
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil { // an empty file is an empty document: defaults
		return c, fmt.Errorf("config: %s: %w", path, err)
	}
	if err := decode(&doc, &c); err != nil {
		return c, fmt.Errorf("config: %s:\n%w", path, err)
	}
	if c.CacheDir == "" {
		c.CacheDir = defaultCacheDir() // documented: empty means the default
	}
	return c, nil
}

// Validate checks every field; the error names the offending key.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %q: %w", c.Listen, err))
	}
	if c.CacheDir == "" {
		errs = append(errs, errors.New("cache_dir: must not be empty"))
	}
	if c.CheckpointInterval < 64<<10 {
		errs = append(errs, fmt.Errorf("checkpoint_interval: %d is below 64KiB", c.CheckpointInterval))
	}
	if c.SyncInterval < c.CheckpointInterval {
		errs = append(errs, fmt.Errorf("sync_interval: %d is below checkpoint_interval (%d)", c.SyncInterval, c.CheckpointInterval))
	}
	if c.MaxSize != 0 && c.MaxSize < 1<<20 { // a limit that small evicts everything at once
		errs = append(errs, fmt.Errorf("max_size: %d is below 1MiB (0 means automatic)", c.MaxSize))
	}
	if c.MaxObjectSize < 1 {
		errs = append(errs, fmt.Errorf("max_object_size: %d is below 1", c.MaxObjectSize))
	}
	u := c.Upstream
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"partial_ttl", c.PartialTTL}, {"client_write_timeout", c.ClientWriteTimeout},
		{"upstream.retry_window", u.RetryWindow}, {"upstream.backoff_initial", u.BackoffInitial},
		{"upstream.backoff_max", u.BackoffMax}, {"upstream.idle_timeout", u.IdleTimeout},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %v", d.key, d.v))
		}
	}
	if c.FillAhead < 1<<20 { // below one fill buffer a download would pause after every read
		errs = append(errs, fmt.Errorf("fill_ahead: %d is below 1MiB", c.FillAhead))
	}
	if c.Segments.MinSize < 1<<20 {
		errs = append(errs, fmt.Errorf("segments.min_size: %d is below 1MiB", c.Segments.MinSize))
	}
	if c.Segments.PerDownload < 1 || c.Segments.PerDownload > 64 {
		errs = append(errs, fmt.Errorf("segments.per_download: %d is not within 1..64", c.Segments.PerDownload))
	}
	if c.Segments.PerHost < 1 || c.Segments.PerHost > 256 {
		errs = append(errs, fmt.Errorf("segments.per_host: %d is not within 1..256", c.Segments.PerHost))
	}
	q := c.QuickAbort
	if q.FinishAbovePercent < 0 || q.FinishAbovePercent > 100 {
		errs = append(errs, fmt.Errorf("quick_abort.finish_above_percent: %v is not within 0..100", q.FinishAbovePercent))
	}
	if q.MaxTime <= 0 {
		errs = append(errs, fmt.Errorf("quick_abort.max_time: must be positive, got %v", q.MaxTime))
	}
	if u.Retries < 0 {
		errs = append(errs, fmt.Errorf("upstream.retries: must not be negative, got %d", u.Retries))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level: %q is not debug, info, warn or error", c.LogLevel))
	}
	errs = append(errs, c.validateConnect()...)
	errs = append(errs, c.validateAccess()...)
	if _, err := c.KeyRules(); err != nil {
		errs = append(errs, err) // one line per mistake, each naming its key
	}
	errs = append(errs, c.validateAdmin()...)
	return errors.Join(errs...)
}

// validateAccess checks allow and auth.users, and refuses an open proxy:
// a listen address beyond loopback needs an allow network beyond it or
// credentials, else anyone who reaches the port could use the proxy.
func (c Config) validateAccess() []error {
	var errs []error
	nets, err := access.ParseNets(c.Allow)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("allow: %w", err))
	case len(c.Allow) == 0:
		errs = append(errs, errors.New("allow: empty: no client could use the proxy (the default is [127.0.0.0/8, ::1/128], this machine)"))
	}
	for _, name := range slices.Sorted(maps.Keys(c.Auth.Users)) {
		if err := access.CheckUserName(name); err != nil {
			errs = append(errs, fmt.Errorf("auth.users: %w", err))
		} else if err := access.CheckHash(c.Auth.Users[name]); err != nil {
			errs = append(errs, fmt.Errorf("auth.users.%s: %w", name, err))
		}
	}
	_, _, lerr := net.SplitHostPort(c.Listen) // reported above
	if err == nil && lerr == nil && len(c.Allow) > 0 && !c.ListenLoopback() && !nets.BeyondLoopback() && len(c.Auth.Users) == 0 {
		errs = append(errs, fmt.Errorf("listen: %s is reachable from other machines but only loopback clients are allowed and no credentials are set: "+
			"add the networks of your clients to allow (e.g. allow: [192.168.1.0/24]), or users under auth.users (make a hash with `resumeproxy passwd`), "+
			"or listen on 127.0.0.1", c.Listen))
	}
	return errs
}

// ListenLoopback reports whether Listen is on loopback only: an address in
// 127.0.0.0/8, ::1, or the name localhost. An empty host (every interface),
// other addresses and other names are not.
func (c Config) ListenLoopback() bool {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// validateConnect checks the CONNECT and interception keys.
func (c Config) validateConnect() []error {
	var errs []error
	if len(c.ConnectPorts) == 0 {
		errs = append(errs, errors.New("connect_ports: empty: no CONNECT could succeed (the default is [443])"))
	}
	for _, p := range c.ConnectPorts {
		if p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("connect_ports: %d is not a port (1..65535)", p))
		}
	}
	if c.TunnelIdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("tunnel_idle_timeout: must be positive, got %v", c.TunnelIdleTimeout))
	}
	m := c.MITM
	if len(m.Hosts) == 0 {
		errs = append(errs, errors.New(`mitm.hosts: empty: nothing would be intercepted (the default, ["*"], is all hosts)`))
	}
	if _, err := hostglob.Parse(m.Hosts); err != nil {
		errs = append(errs, fmt.Errorf("mitm.hosts: %w", err))
	}
	if _, err := hostglob.Parse(m.Bypass); err != nil {
		errs = append(errs, fmt.Errorf("mitm.bypass: %w", err))
	}
	if m.LeafCache < 1 {
		errs = append(errs, fmt.Errorf("mitm.leaf_cache: must be at least 1, got %d", m.LeafCache))
	}
	switch {
	case m.CACert != "" && m.CAKey == "":
		errs = append(errs, errors.New("mitm.ca_key: empty while mitm.ca_cert is set: set both, or neither for the CA of resumeproxy ca init"))
	case m.CACert == "" && m.CAKey != "":
		errs = append(errs, errors.New("mitm.ca_cert: empty while mitm.ca_key is set: set both, or neither for the CA of resumeproxy ca init"))
	}
	return errs
}

// ParsePorts parses a comma-separated port list ("443,8443"), as
// --connect-ports takes it.
func ParsePorts(s string) ([]int, error) {
	var ports []int
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%q is not a port (1..65535)", strings.TrimSpace(f))
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// Size is a byte count written as a plain number or with a unit: 512KiB,
// 4MiB, 1GiB (powers of 1024), or KB, MB, GB (powers of 1000).
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// ParseSize parses a Size.
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return Size(n * mult), nil
}

// UnmarshalYAML accepts a number or a string with a unit.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = v
	return nil
}

// validateAdmin checks admin, admin_token and log.format.
func (c Config) validateAdmin() []error {
	var errs []error
	if c.Admin != "" {
		if _, _, err := net.SplitHostPort(c.Admin); err != nil {
			errs = append(errs, fmt.Errorf("admin: %q: %w", c.Admin, err))
		}
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		errs = append(errs, fmt.Errorf("admin_token: %d characters, want at least 16 (e.g. the output of `openssl rand -hex 16`)", len(c.AdminToken)))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not text or json", c.Log.Format))
	}
	return errs
}
