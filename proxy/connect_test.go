package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/internal/hostglob"
	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

// connect opens a CONNECT tunnel to target through the harness's proxy and
// returns the connection and the proxy's answer; the connection is usable
// as a tunnel only when the status is 200.
func (h *harness) connect(target string) (net.Conn, *http.Response) {
	h.t.Helper()
	c, err := net.DialTimeout("tcp", h.ln.Addr().String(), 5*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		h.t.Fatalf("CONNECT %s: %v", target, err)
	}
	if resp.StatusCode == http.StatusOK && br.Buffered() > 0 {
		h.t.Fatalf("CONNECT %s: %d bytes after the proxy's answer", target, br.Buffered())
	}
	return c, resp
}

// TestConnectPortsRefused: a CONNECT outside connect_ports gets 403 with
// a body that names the setting, with and without interception; the
// proxy dials nothing.
func TestConnectPortsRefused(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		h := newSchemeHarness(t, s)
		for _, target := range []string{"127.0.0.1:25", "127.0.0.1:22", "origin.test:8443", h.origin.Addr} {
			_, resp := h.connect(target)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "connect_ports") {
				t.Errorf("CONNECT %s: %d %q, want 403 naming connect_ports", target, resp.StatusCode, body)
			}
		}
		if n := len(h.origin.Requests("/")); n != 0 {
			t.Errorf("origin saw %d requests, want none", n)
		}
	})
}

// TestConnectBadTarget: a CONNECT without host:port is a 400.
func TestConnectBadTarget(t *testing.T) {
	h := newHarness(t)
	for _, target := range []string{"example.com", ":443", "example.com:http", "example.com:0", "example.com:99999"} {
		_, resp := h.connect(target)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("CONNECT %q: status %d, want 400", target, resp.StatusCode)
		}
	}
}

// tlsTunnel opens an intercepted tunnel to target and makes the TLS
// handshake as a client trusting cfg's roots.
func (h *harness) tlsTunnel(target string, cfg *tls.Config) (*tls.Conn, error) {
	h.t.Helper()
	c, resp := h.connect(target)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("CONNECT %s: status %d, want 200", target, resp.StatusCode)
	}
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(target)
	}
	tc := tls.Client(c, cfg)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	return tc, tc.Handshake()
}

// TestInterceptHostMismatch: inside a tunnel opened for origin.test, a
// request for another host is refused with 421 and reaches no origin
// (DESIGN: never sent elsewhere); the tunnel's own host is served.
func TestInterceptHostMismatch(t *testing.T) {
	h := newTLSHarness(t)
	h.set("/f", testorigin.Resource{Size: 10, CacheControl: "max-age=60"})
	for _, c := range []struct {
		name, request string
		status        int
	}{
		{"other host", "GET /f HTTP/1.1\r\nHost: other.origin.test\r\n\r\n", http.StatusMisdirectedRequest},
		{"other port", "GET /f HTTP/1.1\r\nHost: origin.test:8443\r\n\r\n", http.StatusMisdirectedRequest},
		{"absolute form, other host", "GET https://evil.example/f HTTP/1.1\r\nHost: origin.test\r\n\r\n", http.StatusMisdirectedRequest},
		{"absolute form, plain http", "GET http://origin.test/f HTTP/1.1\r\nHost: origin.test\r\n\r\n", http.StatusBadRequest},
		{"CONNECT inside", "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n", http.StatusMethodNotAllowed},
		{"same host", "GET /f HTTP/1.1\r\nHost: origin.test\r\n\r\n", http.StatusOK},
		{"same host, port and case", "GET /f HTTP/1.1\r\nHost: ORIGIN.test.:443\r\n\r\n", http.StatusOK},
	} {
		tc, err := h.tlsTunnel("origin.test:443", h.clientTLS.Clone())
		if err != nil {
			t.Fatalf("%s: handshake: %v", c.name, err)
		}
		io.WriteString(tc, c.request)
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.status)
		}
		tc.Close()
	}
	if n := len(h.origin.Requests("/f")); n != 1 {
		t.Errorf("origin saw %d requests for /f, want 1 (the first matching one; the second is a hit)", n)
	}
}

// TestInterceptBypass: a host in mitm.bypass is tunnelled untouched: the
// client sees the origin's own certificate and the proxy adds nothing.
func TestInterceptBypass(t *testing.T) {
	h := newTLSHarnessWith(t, func(h *harness) {
		h.opts.MITM.Bypass = mustGlob(t, "origin.test")
		h.clientTLS = &tls.Config{RootCAs: h.origin.CAPool()} // the origin's CA, not ours
	})
	u := h.set("/f", testorigin.Resource{Size: 5000, CacheControl: "max-age=60"})
	for i := range 2 {
		r := h.get(u)
		wantBody(t, "bypassed", r, 200, 0, 0, 5000)
		if xc := r.header.Get("X-Cache"); xc != "" {
			t.Errorf("request %d: X-Cache = %q, want none (not intercepted)", i, xc)
		}
	}
	if got := h.origin.BodyBytes(); got != 10000 {
		t.Errorf("origin sent %d body bytes, want 10000 (nothing cached)", got)
	}
	if got := h.leaves.Generated(); got != 0 {
		t.Errorf("leaves generated = %d, want 0", got)
	}
}

// TestInterceptHostsScope: only hosts in mitm.hosts are intercepted; the
// others are tunnelled.
func TestInterceptHostsScope(t *testing.T) {
	h := newTLSHarnessWith(t, func(h *harness) {
		h.opts.MITM.Hosts = mustGlob(t, "cache.origin.test")
		roots := h.origin.CAPool()
		roots.AddCert(h.auth.Cert)
		h.clientTLS = &tls.Config{RootCAs: roots}
	})
	h.origin.Set("/f", testorigin.Resource{Size: 100, CacheControl: "max-age=60"})
	for host, want := range map[string]string{"cache.origin.test": xMiss, "other.origin.test": ""} {
		r := h.get("https://" + host + "/f")
		wantBody(t, host, r, 200, 0, 0, 100)
		if got := r.header.Get("X-Cache"); got != want {
			t.Errorf("%s: X-Cache = %q, want %q", host, got, want)
		}
	}
}

// TestInterceptUntrustedUpstream: an upstream whose certificate the proxy
// does not trust is never used: the client gets a 502 whose body names the
// host and the reason, and the upstream serves nothing.
func TestInterceptUntrustedUpstream(t *testing.T) {
	evil := testorigin.NewTLS(t) // its own CA, which the proxy does not trust
	evil.Set("/f", testorigin.Resource{Size: 100})
	h := newTLSHarnessWith(t, func(h *harness) { h.names["untrusted.test"] = evil.Addr })
	r := h.get("https://untrusted.test/f")
	if r.status != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", r.status)
	}
	body := string(h.getBody("https://untrusted.test/f"))
	for _, want := range []string{"untrusted.test", "certificate"} {
		if !strings.Contains(body, want) {
			t.Errorf("502 body %q, want it to name %q", body, want)
		}
	}
	if n := evil.BodyBytes(); n != 0 {
		t.Errorf("untrusted upstream sent %d body bytes, want 0", n)
	}
}

// getBody fetches u through the proxy and returns its body.
func (h *harness) getBody(u string) []byte {
	h.t.Helper()
	resp, err := h.client.Get(u)
	if err != nil {
		h.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("GET %s: body: %v", u, err)
	}
	return b
}

// TestInterceptLeafPerName: 200 requests over 20 host names, each on a new
// connection (a new handshake), generate 20 leaves: one per name.
func TestInterceptLeafPerName(t *testing.T) {
	h := newTLSHarness(t)
	h.origin.Set("/f", testorigin.Resource{Size: 10, CacheControl: "max-age=60"})
	h.client.Transport.(*http.Transport).DisableKeepAlives = true
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			resp, err := h.client.Get("https://h" + strconv.Itoa(i%20) + ".origin.test/f")
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err == nil && resp.StatusCode != 200 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a request failed: %v", err)
		}
	}
	if got := h.leaves.Generated(); got != 20 {
		t.Errorf("leaves generated = %d, want 20", got)
	}
}

// TestInterceptRefusalLoggedOnce: a client that does not trust our CA is
// refused at each connection, and the proxy says so once per host, with
// the fix, not once per connection.
func TestInterceptRefusalLoggedOnce(t *testing.T) {
	h := newTLSHarnessWith(t, func(h *harness) {
		h.opts.Logger = slog.New(slog.NewTextHandler(tWriter{t, h.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	const first, again = "refused the interception certificate", "certificate refused again"
	const n = 5
	for i := range n {
		_, err := h.tlsTunnel("origin.test:443", &tls.Config{ServerName: "origin.test", RootCAs: h.origin.CAPool()})
		var uerr x509.UnknownAuthorityError
		if !errors.As(err, &uerr) {
			t.Fatalf("handshake %d: %v, want an unknown-authority error", i, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.logs.count(first)+h.logs.count(again) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the proxy sees each refusal after the client sent it
	}
	if got := h.logs.count(first); got != 1 {
		t.Errorf("%d log lines say %q, want 1", got, first)
	}
	if got := h.logs.count(again); got != n-1 {
		t.Errorf("%d debug lines say %q, want %d", got, again, n-1)
	}
	if got := h.logs.count("mitm.bypass"); got != 1 {
		t.Errorf("%d log lines name mitm.bypass, want 1 (the fix, with the first refusal)", got)
	}
}

// TestCAPem: the CA certificate is served at /ca.pem on the proxy's own
// port (an origin-form request, not a proxy request), and only with
// interception on.
func TestCAPem(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		h := newSchemeHarness(t, s)
		resp, err := http.Get("http://" + h.ln.Addr().String() + "/ca.pem")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if s == plainHTTP {
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("without interception: status %d, want 400", resp.StatusCode)
			}
			return
		}
		if resp.StatusCode != 200 || string(body) != string(h.auth.CertPEM) {
			t.Errorf("GET /ca.pem: %d, %d bytes; want 200 and the CA's %d-byte PEM", resp.StatusCode, len(body), len(h.auth.CertPEM))
		}
	})
}

// tunnelHarness is a plain harness whose proxy tunnels CONNECTs to the
// origin's port, with the given tunnel idle timeout.
func tunnelHarness(t *testing.T, idle time.Duration) *harness {
	h := newHarnessUnstarted(t, testorigin.New(t))
	_, port, _ := net.SplitHostPort(h.origin.Addr)
	p, _ := strconv.Atoi(port)
	h.opts.ConnectPorts, h.opts.TunnelIdleTimeout = []int{p}, idle
	h.start()
	return h
}

// httpOver sends one GET for host and path over an open tunnel and returns the
// status, or an error when the tunnel is closed.
func httpOver(c net.Conn, br *bufio.Reader, host, path string) (int, error) {
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// TestTunnelIdleTimeout: a tunnel in which bytes keep moving outlives the
// idle timeout many times over; one in which nothing moves is closed.
func TestTunnelIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	h := tunnelHarness(t, idle)
	h.origin.Set("/f", testorigin.Resource{Size: 10})
	c, resp := h.connect(h.origin.Addr)
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT: status %d", resp.StatusCode)
	}
	br := bufio.NewReader(c)
	start := time.Now()
	for time.Since(start) < 4*idle {
		if st, err := httpOver(c, br, h.origin.Addr, "/f"); err != nil || st != 200 {
			t.Fatalf("request after %v in an active tunnel: %d, %v", time.Since(start), st, err)
		}
		time.Sleep(idle / 4)
	}
	c.SetReadDeadline(time.Now().Add(10 * idle))
	_, err := br.ReadByte()
	if err == nil || isTimeout(err) {
		t.Fatalf("idle tunnel: read = %v, want it closed by the proxy within %v", err, 10*idle)
	}
}

// TestShutdownClosesTunnels: Proxy.Shutdown waits for tunnels and
// intercepted connections until its context ends, then closes them.
func TestShutdownClosesTunnels(t *testing.T) {
	h := newTLSHarnessWith(t, func(h *harness) {
		_, port, _ := net.SplitHostPort(h.origin.Addr)
		p, _ := strconv.Atoi(port)
		h.opts.ConnectPorts = []int{443, p}
		h.opts.MITM.Bypass = mustGlob(t, "127.0.0.1")
	})
	h.origin.Set("/f", testorigin.Resource{Size: 10})
	tunnel, resp := h.connect(h.origin.Addr) // bypassed: a plain tunnel
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %d", resp.StatusCode)
	}
	tc, err := h.tlsTunnel("origin.test:443", h.clientTLS.Clone())
	if err != nil {
		t.Fatal(err)
	}
	if st, err := httpOver(tc, bufio.NewReader(tc), "origin.test", "/f"); err != nil || st != 200 {
		t.Fatalf("request in the intercepted tunnel: %d, %v", st, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	h.proxy.Shutdown(ctx)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Shutdown took %v with a 200ms context", d)
	}
	for name, c := range map[string]net.Conn{"tunnel": tunnel, "intercepted": tc} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Errorf("%s connection after Shutdown: read = %v, want closed", name, err)
		}
	}
}
func mustGlob(t *testing.T, pats ...string) hostglob.List {
	t.Helper()
	l, err := hostglob.Parse(pats)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
