package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestMainRunRefusesOpenProxy: a listen address other machines can reach,
// with only loopback clients allowed and no credentials, stops the start
// with exit status 2 and a message naming the settings to add, before the
// cache directory is touched. (Before: the proxy served anyone.)
func TestMainRunRefusesOpenProxy(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:0", "[::]:0", ":0"} {
		dir := filepath.Join(t.TempDir(), "cache")
		errc := make(chan error, 1)
		go func() { errc <- run([]string{"--listen", listen, "--cache-dir", dir}, io.Discard, io.Discard) }()
		var err error
		select {
		case err = <-errc:
		case <-time.After(10 * time.Second):
			t.Fatalf("run(--listen %s) is still serving after 10s, want it refused at start", listen)
		}
		if got := exitCode(err); got != 2 {
			t.Errorf("run(--listen %s) = %v (exit %d), want exit 2", listen, err, got)
		}
		for _, w := range []string{"listen", "allow", "auth.users", "resumeproxy passwd"} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("run(--listen %s) error %q, want it to name %s", listen, err, w)
			}
		}
		if _, serr := os.Stat(dir); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("run(--listen %s) created the cache directory (stat: %v), want it untouched", listen, serr)
		}
	}
}

// TestParseFlagsAccess: allow widened, or users configured, lets the proxy
// listen on every interface.
func TestParseFlagsAccess(t *testing.T) {
	withUserCacheDir(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("wonderland"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		"listen: 0.0.0.0:3128\nallow: [127.0.0.0/8, 192.168.1.0/24]\n",
		fmt.Sprintf("listen: 0.0.0.0:3128\nauth: {users: {alice: %q}}\n", hash),
	} {
		if _, err := parseFlags([]string{"--config", writeFile(t, "c.yaml", body)}, io.Discard); err != nil {
			t.Errorf("parseFlags(config %q) = %v, want nil", body, err)
		}
	}
}

// TestE2EOpenProxyRefused: the binary, told to listen on every interface
// with access control off, exits 2 at once naming the setting.
func TestE2EOpenProxyRefused(t *testing.T) {
	t.Parallel()
	bin := proxyBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--listen", "0.0.0.0:0", "--cache-dir", filepath.Join(t.TempDir(), "c"))
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "allow") {
		t.Errorf("resumeproxy --listen 0.0.0.0:0: %v, output %q; want exit 2 naming allow", err, out)
	}
}
