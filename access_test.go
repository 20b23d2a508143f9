package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/resumeproxy/resumeproxy/internal/testorigin"
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

// TestSelfAddrs: a listener on every interface is reached through each
// local address with its port, loopback included.
func TestSelfAddrs(t *testing.T) {
	got, err := selfAddrs(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3128})
	if want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:3128")}; err != nil || !slices.Equal(got, want) {
		t.Errorf("selfAddrs(127.0.0.1:3128) = %v, %v; want %v", got, err, want)
	}
	got, err = selfAddrs(&net.TCPAddr{IP: net.IPv4zero, Port: 3128})
	if err != nil || !slices.Contains(got, netip.MustParseAddrPort("127.0.0.1:3128")) || !slices.Contains(got, netip.MustParseAddrPort("0.0.0.0:3128")) {
		t.Errorf("selfAddrs(0.0.0.0:3128) = %v, %v; want 0.0.0.0:3128 and 127.0.0.1:3128 among them", got, err)
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

// TestE2EAccessWired: the binary applies allow and knows its own address:
// a client outside allow gets 403 (logged with its address), and a proxy
// request for the proxy's own address gets 508.
func TestE2EAccessWired(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	o := testorigin.New(t)
	o.Set("/f", testorigin.Resource{Size: 1000, Validators: testorigin.StrongETag, CacheControl: cacheFor})
	status := func(p *proxyProc, u string) int {
		hdr := filepath.Join(t.TempDir(), "h")
		r := curl(t, p, clientTimeout, u, "-o", filepath.Join(t.TempDir(), "f"), "-D", hdr)
		s, _, dump := readHeaderDump(t, hdr)
		t.Logf("curl %s: %v\n%s", u, r, dump)
		return s
	}
	p := startProxy(t, t.TempDir())
	if got := status(p, p.URL()+"/x"); got != http.StatusLoopDetected {
		t.Errorf("GET %s/x through itself: status %d, want 508", p.URL(), got)
	}
	if got := status(p, o.URL+"/f"); got != http.StatusOK {
		t.Errorf("GET %s/f: status %d, want 200", o.URL, got)
	}
	q := startProxy(t, t.TempDir(), "--config", writeFile(t, "c.yaml", "allow: [\"192.0.2.0/24\"]\n"))
	if got := status(q, o.URL+"/f"); got != http.StatusForbidden {
		t.Errorf("GET from 127.0.0.1 with allow [192.0.2.0/24]: status %d, want 403", got)
	}
	if !strings.Contains(q.log(), "client=127.0.0.1") {
		t.Errorf("the refusal was not logged with the client's address:\n%s", q.log())
	}
}
