package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/resumeproxy/resumeproxy/internal/keyrule"
)

// writeConfig writes body to a config file in a fresh directory.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fixCacheHome points the user's cache directory at a fresh directory so
// that Default().CacheDir does not depend on the machine.
func fixCacheHome(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", dir)
	return dir
}

func TestDefault(t *testing.T) {
	home := fixCacheHome(t)
	want := Config{
		Listen:             "127.0.0.1:3128",
		CacheDir:           filepath.Join(home, "resumeproxy"),
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
		Allow:              []string{"127.0.0.0/8", "::1/128"},
		Auth:               Auth{Users: map[string]string{}},
		FillAhead:          64 << 20,
		Segments:           Segments{MinSize: 16 << 20, PerDownload: 4, PerHost: 8},
		ClientWriteTimeout: time.Minute,
		Rules:              []keyrule.Spec{},
		BuiltinRules:       map[string]bool{},
	}
	for _, b := range keyrule.Builtins() {
		want.BuiltinRules[b.Name] = true
	}
	got := Default()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Default() = %+v, want %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v, want nil", err)
	}
}

// TestDefaultCacheDirWithoutHome: with no user cache directory the cache
// goes under the temporary directory.
func TestDefaultCacheDirWithoutHome(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	if _, err := os.UserCacheDir(); err == nil {
		t.Skip("this platform finds a user cache directory without HOME")
	}
	if got, want := Default().CacheDir, filepath.Join(os.TempDir(), "resumeproxy"); got != want {
		t.Errorf("Default().CacheDir = %q, want %q", got, want)
	}
}

// TestLoadExample: config.example.yaml says its values are the defaults,
// with cache_dir left out (commented) so that the default applies.
func TestLoadExample(t *testing.T) {
	fixCacheHome(t)
	got, err := Load("../../config.example.yaml")
	if err != nil {
		t.Fatalf("Load(config.example.yaml) error %v, want nil", err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(config.example.yaml) = %+v, want Default() = %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Load(config.example.yaml).Validate() = %v, want nil", err)
	}
}

func TestLoadEmpty(t *testing.T) {
	fixCacheHome(t)
	for _, body := range []string{"", "\n", "# only a comment\n", "---\n", "upstream:\n"} {
		got, err := Load(writeConfig(t, body))
		if err != nil || !reflect.DeepEqual(got, Default()) {
			t.Errorf("Load(%q) = %+v, %v, want Default(), nil", body, got, err)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	fixCacheHome(t)
	path := filepath.Join(t.TempDir(), "absent.yaml")
	got, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(%s) error = %v, want fs.ErrNotExist", path, err)
	}
	if !reflect.DeepEqual(got, Default()) {
		t.Errorf("Load(%s) = %+v, want Default()", path, got)
	}
}

func TestLoad(t *testing.T) {
	fixCacheHome(t)
	def := Default()
	all := def
	all.Listen = "[::1]:8080"
	all.CacheDir = "/var/cache/rp"
	all.CheckpointInterval = 1 << 20
	all.SyncInterval = 16 << 20
	all.MaxSize = 20 << 30
	all.MaxObjectSize = 4 << 30
	all.PartialTTL = 48 * time.Hour
	all.Upstream = Upstream{Retries: 3, RetryWindow: 90 * time.Second, BackoffInitial: time.Second,
		BackoffMax: time.Minute, IdleTimeout: 5 * time.Second}
	all.LogLevel = "debug"
	someUpstream := def
	someUpstream.Upstream.Retries = 0
	someUpstream.Upstream.IdleTimeout = time.Hour
	plainSize := def
	plainSize.CheckpointInterval = 65536
	for _, c := range []struct {
		name string
		body string
		want Config
	}{
		{"every key", `
listen: "[::1]:8080"
cache_dir: /var/cache/rp
checkpoint_interval: 1MiB
sync_interval: 16MiB
max_size: 20GiB
max_object_size: 4GiB
partial_ttl: 48h
upstream:
  retries: 3
  retry_window: 1m30s
  backoff_initial: 1s
  backoff_max: 1m
  idle_timeout: 5s
log_level: debug
`, all},
		// A nested key left out keeps its default.
		{"some upstream keys", "upstream:\n  retries: 0\n  idle_timeout: 1h\n", someUpstream},
		{"size as a number", "checkpoint_interval: 65536\n", plainSize},
		{"null values keep defaults", "checkpoint_interval:\nupstream:\n  retry_window:\nlog_level:\n", def},
	} {
		got, err := Load(writeConfig(t, c.body))
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Load(%q) = %+v, %v, want %+v, nil", c.name, c.body, got, err, c.want)
		}
	}
}

// TestLoadEmptyCacheDir: config.example.yaml documents an empty cache_dir
// as "resumeproxy under the user's cache directory".
func TestLoadEmptyCacheDir(t *testing.T) {
	fixCacheHome(t)
	for _, body := range []string{"cache_dir:\n", "cache_dir: \"\"\n"} {
		got, err := Load(writeConfig(t, body))
		if err != nil {
			t.Fatalf("Load(%q) error %v, want nil", body, err)
		}
		// Regression: with `cache_dir: ""` Load kept the empty string, and
		// Validate then fails with "cache_dir: must not be empty", although
		// config.example.yaml says "Empty means "resumeproxy" under the
		// user's cache directory". Only a missing or null key gets the
		// default.
		if want := Default().CacheDir; got.CacheDir != want {
			t.Errorf("Load(%q).CacheDir = %q, want %q", body, got.CacheDir, want)
		}
	}
}

// TestLoadRejects: every mistake is reported, one line each, as
// "PATH: WHAT (line N)", after the file's name.
func TestLoadRejects(t *testing.T) {
	fixCacheHome(t)
	for _, c := range []struct {
		name string
		body string
		want string // the error after "config: PATH:\n"
	}{
		{"unknown top-level key", "listen_addr: 127.0.0.1:1\n", "listen_addr: unknown key (line 1)"},
		{"unknown nested key, close to one", "upstream:\n  retrys: 3\n",
			"upstream.retrys: unknown key (line 2); did you mean upstream.retries?"},
		{"unknown nested key, far from any", "upstream:\n  colour: 3\n", "upstream.colour: unknown key (line 2)"},
		{"misspelled case", "Listen: 127.0.0.1:1\n", "Listen: unknown key (line 1); did you mean listen?"},
		{"unknown key among known ones", "listen: 127.0.0.1:1\nlog_level: debug\ncolor: true\n", "color: unknown key (line 3)"},
		{"a key twice", "log_level: debug\nlog_level: info\n", "log_level: already set at line 1 (line 2)"},
		{"word for an integer", "upstream:\n  idle_timeout: 1s\n  retries: eight\n",
			`upstream.retries: want an integer, got "eight" (line 3)`},
		{"fraction for an integer", "mitm:\n  leaf_cache: 10.5\n", `mitm.leaf_cache: want an integer, got "10.5" (line 2)`},
		{"quoted integer", "upstream: {retries: '8'}\n", `upstream.retries: want an integer, got "8" (line 1)`},
		{"negative size", "checkpoint_interval: -1\n",
			`checkpoint_interval: want a size (like 4MiB, 512KiB, 1GB or a number of bytes), got "-1" (line 1)`},
		{"bad size", "\nmax_size: 10 gigs\n",
			`max_size: want a size (like 4MiB, 512KiB, 1GB or a number of bytes), got "10 gigs" (line 2)`},
		{"bad duration", "upstream:\n  retry_window: soon\n",
			`upstream.retry_window: want a duration (like 30s, 10m, 12h or 7d), got "soon" (line 2)`},
		{"days after hours", "partial_ttl: 12h1d\n",
			`partial_ttl: want a duration (like 30s, 10m, 12h or 7d), got "12h1d" (line 1)`},
		{"list for a duration", "partial_ttl: [1d]\n", "partial_ttl: want a duration (like 30s, 10m, 12h or 7d), got a list (line 1)"},
		{"word for a boolean", "mitm:\n  enabled: sure\n", `mitm.enabled: want true or false, got "sure" (line 2)`},
		{"word for a number", "quick_abort: {finish_above_percent: most}\n",
			`quick_abort.finish_above_percent: want a number, got "most" (line 1)`},
		{"scalar for a list", "mitm:\n  hosts: '*'\n", `mitm.hosts: want a list of strings, got "*" (line 2)`},
		{"bad list item", "connect_ports: [443,\n  x]\n", `connect_ports[1]: want an integer, got "x" (line 2)`},
		{"list for a string", "listen: [a]\n", "listen: want a string, got a list (line 1)"},
		{"not a mapping", "- listen\n", "(top level): want a mapping of keys to values, got a list (line 1)"},
		{"upstream not a mapping", "upstream: 3\n", `upstream: want a mapping of keys to values, got "3" (line 1)`},
		{"users not a mapping", "auth:\n  users: [alice]\n", "auth.users: want a mapping of keys to values, got a list (line 2)"},
		{"long value clipped", "listen: [" + strings.Repeat("x", 100) + "]\nlog_level: " + strings.Repeat("y", 100) + "\nx: 1\n",
			"listen: want a string, got a list (line 1)\nx: unknown key (line 3)"},
		{"every mistake", "upstream:\n  retrys: 3\n  retries: eight\npartial_ttl: week\n",
			"upstream.retrys: unknown key (line 2); did you mean upstream.retries?\n" +
				`upstream.retries: want an integer, got "eight" (line 3)` + "\n" +
				`partial_ttl: want a duration (like 30s, 10m, 12h or 7d), got "week" (line 4)`},
	} {
		path := writeConfig(t, c.body)
		_, err := Load(path)
		if want := "config: " + path + ":\n" + c.want; err == nil || err.Error() != want {
			t.Errorf("%s: Load(%q) error = %v, want %s", c.name, c.body, err, want)
		}
	}
}

// TestLoadRejectsSyntax: a file that is no YAML gets yaml's error, with
// the file and the line.
func TestLoadRejectsSyntax(t *testing.T) {
	fixCacheHome(t)
	path := writeConfig(t, "listen: [\n")
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line") {
		t.Errorf("Load(%q) error = %v, want one naming %s and the line", "listen: [", err, path)
	}
}

// TestLoadClipsValues: an error quotes at most 64 bytes of a bad value.
func TestLoadClipsValues(t *testing.T) {
	fixCacheHome(t)
	path := writeConfig(t, "upstream:\n  retries: "+strings.Repeat("n", 1000)+"\n")
	_, err := Load(path)
	want := `upstream.retries: want an integer, got "` + strings.Repeat("n", 64) + `…" (line 2)`
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("Load(retries: 1000 bytes) error = %v, want one ending %s", err, want)
	}
}

// TestLoadDays: every duration key takes days.
func TestLoadDays(t *testing.T) {
	fixCacheHome(t)
	got, err := Load(writeConfig(t, "partial_ttl: 7d\nclient_write_timeout: 1d12h\nupstream:\n  retry_window: 0.5d\n"))
	if err != nil {
		t.Fatalf("Load(days) error %v", err)
	}
	if got.PartialTTL != 7*24*time.Hour || got.ClientWriteTimeout != 36*time.Hour || got.Upstream.RetryWindow != 12*time.Hour {
		t.Errorf("Load(days) = partial_ttl %v, client_write_timeout %v, upstream.retry_window %v, want 168h, 36h, 12h",
			got.PartialTTL, got.ClientWriteTimeout, got.Upstream.RetryWindow)
	}
}

// TestLoadAnchors: aliases and merge keys read as yaml defines them.
func TestLoadAnchors(t *testing.T) {
	fixCacheHome(t)
	got, err := Load(writeConfig(t, "x-ports: &p [443, 8443]\n"))
	if err == nil || !strings.Contains(err.Error(), "x-ports: unknown key (line 1)") {
		t.Errorf("Load(x-ports) error = %v, want x-ports: unknown key", err)
	}
	got, err = Load(writeConfig(t, "upstream: &u\n  retries: 3\nquick_abort:\n  max_time: 1m\nconnect_ports: [443]\n"))
	if err != nil || got.Upstream.Retries != 3 {
		t.Errorf("Load(anchor) = %+v, %v, want retries 3", got.Upstream, err)
	}
	got, err = Load(writeConfig(t, "mitm:\n  hosts: &h ['*.example']\n  bypass: *h\n"))
	if err != nil || !reflect.DeepEqual(got.MITM.Bypass, []string{"*.example"}) {
		t.Errorf("Load(alias) = %+v, %v, want bypass [*.example]", got.MITM, err)
	}
}

func TestParseDuration(t *testing.T) {
	const day = 24 * time.Hour
	for _, c := range []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"0", 0, false},
		{"250ms", 250 * time.Millisecond, false},
		{"1h30m", 90 * time.Minute, false},
		{"7d", 7 * day, false},
		{"1d12h", day + 12*time.Hour, false},
		{"1d12h30m5s", day + 12*time.Hour + 30*time.Minute + 5*time.Second, false},
		{"0.5d", 12 * time.Hour, false},
		{"1.5d", 36 * time.Hour, false},
		{" 7d ", 7 * day, false},
		{"+2d", 2 * day, false},
		{"-1d", -day, false}, // Validate refuses it, naming the key
		{"-1d1h", -day - time.Hour, false},
		{"106751d", 106751 * day, false},
		{"106752d", 0, true}, // past the largest Duration
		{"", 0, true},
		{"d", 0, true},
		{".d", 0, true},
		{"1.2.3d", 0, true},
		{"7", 0, true}, // Go: a number needs a unit, but 0
		{"7 d", 0, true},
		{"7D", 0, true},
		{"7days", 0, true},
		{"1dd", 0, true},
		{"1d-1h", 0, true},
		{"1h1d", 0, true},
		{"1d1d", 0, true},
		{"1e3d", 0, true},
		{"NaNd", 0, true},
		{"infd", 0, true},
		{"0x1d", 0, true},
		{"week", 0, true},
	} {
		got, err := ParseDuration(c.in)
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("ParseDuration(%q) = %v, %v, want %v, error %v", c.in, got, err, c.want, c.wantErr)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"retrys", "retries", 2},
		{"kitten", "sitting", 3}, {"listen", "listen", 0}, {"lsiten", "listen", 2},
	} {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    Size
		wantErr bool
	}{
		{"0", 0, false},
		{"1", 1, false},
		{"65536", 65536, false},
		{"1B", 1, false},
		{"10 B", 10, false},
		{"1KiB", 1 << 10, false},
		{"512KiB", 512 << 10, false},
		{"4MiB", 4 << 20, false},
		{"1GiB", 1 << 30, false},
		{"2TiB", 2 << 40, false},
		{"1KB", 1000, false},
		{"4MB", 4e6, false},
		{"1GB", 1e9, false},
		{"3TB", 3e12, false},
		{" 4 MiB ", 4 << 20, false},
		{"4\tMiB", 4 << 20, false},
		{"4611686018427387904", 1 << 62, false}, // the largest size
		{"4194304TiB", 1 << 62, false},
		{"4611686018427387905", 0, true},
		{"4194305TiB", 0, true},
		{"9223372036854775807", 0, true},
		{"99999999999999999999", 0, true},
		{"", 0, true},
		{"B", 0, true},
		{"MiB", 0, true},
		{"-1", 0, true},
		{"-1KiB", 0, true},
		{"1.5MiB", 0, true},
		{"4mib", 0, true}, // units are case-sensitive
		{"4 kib", 0, true},
		{"4MiBs", 0, true},
		{"1KiBB", 0, true},
		{"4 M", 0, true},
		{"four", 0, true},
		{"0x10", 0, true},
		{"1e6", 0, true},
		{"1,000", 0, true},
	} {
		got, err := ParseSize(c.in)
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("ParseSize(%q) = %d, %v, want %d, error %v", c.in, got, err, c.want, c.wantErr)
		}
	}
}

func TestSizeUnmarshalYAML(t *testing.T) {
	for _, c := range []struct {
		doc     string
		want    Size
		wantErr bool
	}{
		{"s: 1048576", 1 << 20, false},
		{"s: 0", 0, false},
		{"s: 4MiB", 4 << 20, false},
		{`s: "4MiB"`, 4 << 20, false},
		{"s: '512 KiB'", 512 << 10, false},
		{`s: "65536"`, 65536, false},
		{"s: 1GB", 1e9, false},
		{"s: -1", 0, true},
		{"s: 1.5", 0, true},
		{"s: 4mib", 0, true},
		{"s: true", 0, true},
		{"s: [1]", 0, true},
		{"s: {a: 1}", 0, true},
	} {
		var v struct {
			S Size `yaml:"s"`
		}
		err := yaml.Unmarshal([]byte(c.doc), &v)
		if v.S != c.want || (err != nil) != c.wantErr {
			t.Errorf("yaml.Unmarshal(%q) = %d, %v, want %d, error %v", c.doc, v.S, err, c.want, c.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "line 1") {
			t.Errorf("yaml.Unmarshal(%q) error = %v, want one naming line 1", c.doc, err)
		}
	}
}

// testHash is a bcrypt hash (cost 4) of "wonderland".
const testHash = "$2a$04$uYF.bYNDLOHeh7UjqjT84u8W8y8PwdJfY7e0ayrv6yof1L2ueFKDK"

func TestValidate(t *testing.T) {
	fixCacheHome(t)
	for _, c := range []struct {
		key    string // the key the error must name; "" for valid
		mutate func(*Config)
	}{
		{"", func(*Config) {}},
		{"listen", func(c *Config) { c.Listen = ":3128" }}, // every interface, loopback clients only: refused
		{"", func(c *Config) { c.Listen = "[::1]:0" }},
		{"", func(c *Config) { c.CheckpointInterval = 64 << 10 }},
		{"", func(c *Config) { c.Upstream.Retries = 0 }},
		{"", func(c *Config) { c.Upstream.BackoffInitial = time.Nanosecond }},
		{"", func(c *Config) { c.MaxSize = 1 << 20 }},
		{"", func(c *Config) { c.MaxSize = 1 << 40 }},
		{"", func(c *Config) { c.PartialTTL = time.Second }},
		{"", func(c *Config) { c.LogLevel = "debug" }},
		{"", func(c *Config) { c.LogLevel = "warn" }},
		{"", func(c *Config) { c.LogLevel = "error" }},
		{"", func(c *Config) { c.Log.Format = "json" }},
		{"", func(c *Config) { c.Admin = "127.0.0.1:9128" }},
		{"", func(c *Config) { c.AdminToken = "0123456789abcdef" }},
		{"listen", func(c *Config) { c.Listen = "127.0.0.1" }},
		{"listen", func(c *Config) { c.Listen = "" }},
		{"cache_dir", func(c *Config) { c.CacheDir = "" }},
		{"checkpoint_interval", func(c *Config) { c.CheckpointInterval = 64<<10 - 1 }},
		{"checkpoint_interval", func(c *Config) { c.CheckpointInterval = 0 }},
		{"", func(c *Config) { c.SyncInterval = c.CheckpointInterval }},
		{"sync_interval", func(c *Config) { c.SyncInterval = c.CheckpointInterval - 1 }},
		{"sync_interval", func(c *Config) { c.CheckpointInterval = 128 << 20 }},
		{"max_size", func(c *Config) { c.MaxSize = 1<<20 - 1 }},
		{"max_size", func(c *Config) { c.MaxSize = 1 }},
		{"max_size", func(c *Config) { c.MaxSize = -1 }},
		{"", func(c *Config) { c.MaxObjectSize = 1 }},
		{"max_object_size", func(c *Config) { c.MaxObjectSize = 0 }},
		{"max_object_size", func(c *Config) { c.MaxObjectSize = -1 }},
		{"partial_ttl", func(c *Config) { c.PartialTTL = 0 }},
		{"partial_ttl", func(c *Config) { c.PartialTTL = -time.Hour }},
		{"upstream.retries", func(c *Config) { c.Upstream.Retries = -1 }},
		{"upstream.retry_window", func(c *Config) { c.Upstream.RetryWindow = 0 }},
		{"upstream.backoff_initial", func(c *Config) { c.Upstream.BackoffInitial = -time.Second }},
		{"upstream.backoff_max", func(c *Config) { c.Upstream.BackoffMax = 0 }},
		{"upstream.idle_timeout", func(c *Config) { c.Upstream.IdleTimeout = -1 }},
		{"quick_abort.finish_above_percent", func(c *Config) { c.QuickAbort.FinishAbovePercent = 101 }},
		{"quick_abort.finish_above_percent", func(c *Config) { c.QuickAbort.FinishAbovePercent = -1 }},
		{"quick_abort.max_time", func(c *Config) { c.QuickAbort.MaxTime = 0 }},
		{"", func(c *Config) { c.QuickAbort.FinishAbovePercent, c.QuickAbort.FinishBelow = 90, 16<<20 }},
		{"log_level", func(c *Config) { c.LogLevel = "verbose" }},
		{"log_level", func(c *Config) { c.LogLevel = "" }},
		{"log_level", func(c *Config) { c.LogLevel = "INFO" }},
		{"log.format", func(c *Config) { c.Log.Format = "xml" }},
		{"log.format", func(c *Config) { c.Log.Format = "" }},
		{"admin", func(c *Config) { c.Admin = "9128" }},
		{"admin_token", func(c *Config) { c.AdminToken = "short" }},
		{"", func(c *Config) { c.ConnectPorts = []int{443, 8443} }},
		{"connect_ports", func(c *Config) { c.ConnectPorts = nil }},
		{"connect_ports", func(c *Config) { c.ConnectPorts = []int{443, 70000} }},
		{"connect_ports", func(c *Config) { c.ConnectPorts = []int{0} }},
		{"tunnel_idle_timeout", func(c *Config) { c.TunnelIdleTimeout = 0 }},
		{"", func(c *Config) { c.FillAhead = 1 << 20 }},
		{"fill_ahead", func(c *Config) { c.FillAhead = 1<<20 - 1 }},
		{"fill_ahead", func(c *Config) { c.FillAhead = 0 }},
		{"client_write_timeout", func(c *Config) { c.ClientWriteTimeout = 0 }},
		{"", func(c *Config) {
			c.MITM.Hosts, c.MITM.Bypass = []string{"*.example.com"}, []string{"pinned.example.com"}
		}},
		{"mitm.hosts", func(c *Config) { c.MITM.Hosts = nil }},
		{"mitm.hosts", func(c *Config) { c.MITM.Hosts = []string{"https://example.com/"} }},
		{"mitm.bypass", func(c *Config) { c.MITM.Bypass = []string{"[a-"} }},
		{"mitm.leaf_cache", func(c *Config) { c.MITM.LeafCache = 0 }},
		{"", func(c *Config) { c.MITM.CACert, c.MITM.CAKey = "ca.pem", "ca-key.pem" }},
		{"mitm.ca_key", func(c *Config) { c.MITM.CACert = "ca.pem" }},
		{"mitm.ca_cert", func(c *Config) { c.MITM.CAKey = "ca-key.pem" }},
		{"", func(c *Config) { c.Allow = []string{"192.168.1.0/24", "10.0.0.7", "::1"} }},
		{"", func(c *Config) { c.Listen, c.Allow = "0.0.0.0:3128", []string{"127.0.0.0/8", "192.168.1.0/24"} }},
		{"", func(c *Config) { c.Listen, c.Auth.Users = "[::]:3128", map[string]string{"alice": testHash} }},
		{"", func(c *Config) { c.Listen = "localhost:3128" }},
		{"", func(c *Config) { c.Listen = "127.0.0.2:3128" }},
		{"", func(c *Config) { c.AllowPrivateUpstreams = true }},
		{"listen", func(c *Config) { c.Listen = "0.0.0.0:3128" }},
		{"listen", func(c *Config) { c.Listen = "192.168.1.5:3128" }},
		{"listen", func(c *Config) { c.Listen = "proxy.example:3128" }},
		{"allow", func(c *Config) { c.Allow = nil }},
		{"allow", func(c *Config) { c.Allow = []string{"192.168.1.1/24"} }},
		{"allow", func(c *Config) { c.Allow = []string{"lan"} }},
		{"auth.users", func(c *Config) { c.Auth.Users = map[string]string{"a:b": testHash} }},
		{"auth.users.alice", func(c *Config) { c.Auth.Users = map[string]string{"alice": "wonderland"} }},
		{"", func(c *Config) { c.BuiltinRules["s3-signature"] = false }},
		{"", func(c *Config) { c.BuiltinRules = nil }},
		{"", func(c *Config) { c.Rules = []keyrule.Spec{{Name: "a", Path: "/x/(.*)", Key: "x/$1"}} }},
		{"builtin_rules.s4-signature", func(c *Config) { c.BuiltinRules["s4-signature"] = false }},
		{"rules[1].path", func(c *Config) { c.Rules = []keyrule.Spec{{Name: "a"}, {Name: "b", Path: "(["}} }},
		{"rules[0].name", func(c *Config) { c.Rules = []keyrule.Spec{{Path: "/x"}} }},
	} {
		cfg := Default()
		c.mutate(&cfg)
		err := cfg.Validate()
		switch {
		case c.key == "" && err != nil:
			t.Errorf("Validate(%+v) = %v, want nil", cfg, err)
		case c.key != "" && (err == nil || !strings.HasPrefix(err.Error(), c.key+": ") || strings.Contains(err.Error(), "\n")):
			t.Errorf("Validate(%+v) = %v, want one error naming %s", cfg, err, c.key)
		}
	}
}

// TestValidateAllInvalid: every invalid key is reported at once, one line each.
func TestValidateAllInvalid(t *testing.T) {
	cfg := Config{
		Listen:             "nowhere",
		CheckpointInterval: 1,
		MaxSize:            1000,
		Upstream:           Upstream{Retries: -1},
		LogLevel:           "loud",
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatalf("Validate(%+v) = nil, want errors", cfg)
	}
	lines := strings.Split(err.Error(), "\n")
	keys := []string{"listen", "allow", "cache_dir", "checkpoint_interval", "sync_interval", "max_size", "max_object_size", "partial_ttl", "client_write_timeout", "fill_ahead", "upstream.retry_window",
		"upstream.backoff_initial", "upstream.backoff_max", "upstream.idle_timeout", "quick_abort.max_time",
		"upstream.retries", "log_level", "connect_ports", "tunnel_idle_timeout", "mitm.hosts", "mitm.leaf_cache", "log.format",
		"segments.min_size", "segments.per_download", "segments.per_host"}
	if len(lines) != len(keys) {
		t.Errorf("Validate(%+v) = %d errors, want %d:\n%v", cfg, len(lines), len(keys), err)
	}
	for _, key := range keys {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, key+": ")
		}
		if !found {
			t.Errorf("Validate(%+v) = %q, want a line naming %s", cfg, lines, key)
		}
	}
}

// TestLoadKeyRules: rules and builtin_rules from YAML; a built-in left out
// stays on, and a misspelt key inside a rule is refused.
func TestLoadKeyRules(t *testing.T) {
	fixCacheHome(t)
	got, err := Load(writeConfig(t, `
builtin_rules:
  s3-signature: false
rules:
  - name: blobs
    hosts: ["*.cas.test"]
    path: '/cas/([0-9a-f]{64})'
    digest: 'sha256:$1'
  - name: exempt
    hosts: [mutable.test]
`))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []keyrule.Spec{
		{Name: "blobs", Hosts: []string{"*.cas.test"}, Path: "/cas/([0-9a-f]{64})", Digest: "sha256:$1"},
		{Name: "exempt", Hosts: []string{"mutable.test"}},
	}
	if !reflect.DeepEqual(got.Rules, want) {
		t.Errorf("Rules = %+v, want %+v", got.Rules, want)
	}
	if on, set := got.BuiltinRules["s3-signature"]; on || !set {
		t.Errorf("builtin_rules.s3-signature = %v (set %v), want false", on, set)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
	if _, err := Load(writeConfig(t, "rules:\n  - name: a\n    pathx: /x\n")); err == nil || !strings.Contains(err.Error(), "pathx") {
		t.Errorf("Load(rule with pathx) error = %v, want one naming pathx", err)
	}
}
