package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/internal/access"
	"github.com/resumeproxy/resumeproxy/internal/testorigin"
	"golang.org/x/crypto/bcrypt"
)

// accessPolicy builds the access policy of c, as main does from the config.
func accessPolicy(t *testing.T, c access.Config) *access.Policy {
	t.Helper()
	p, err := access.NewPolicy(c)
	if err != nil {
		t.Fatalf("access.NewPolicy(%+v) = %v", c, err)
	}
	return p
}

// clientAs is a client of the harness's proxy that authenticates as user
// with pass (no credentials when user is empty).
func (h *harness) clientAs(user, pass string) *http.Client {
	pu := &url.URL{Scheme: "http", Host: h.ln.Addr().String()}
	if user != "" {
		pu.User = url.UserPassword(user, pass)
	}
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), DisableCompression: true, TLSClientConfig: h.clientTLS}}
	h.t.Cleanup(c.CloseIdleConnections)
	return c
}

// status fetches u with c and returns the status, the response header and
// the body; over HTTPS a CONNECT the proxy refused is an error from the
// client, from which its status is taken.
func status(t *testing.T, c *http.Client, method, u string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range hdr {
		k, v, _ := strings.Cut(line, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	resp, err := c.Do(req)
	if err != nil {
		for _, code := range []int{403, 407, 508} {
			if strings.Contains(err.Error(), strconv.Itoa(code)) || strings.Contains(err.Error(), http.StatusText(code)) {
				return code, nil, err.Error()
			}
		}
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// rawConnect sends one CONNECT for target with extra header lines and
// returns the proxy's status.
func (h *harness) rawConnect(target string, hdr ...string) int {
	h.t.Helper()
	c, err := net.DialTimeout("tcp", h.ln.Addr().String(), 5*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", target, target, headerLines(hdr))
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	if err != nil {
		h.t.Fatalf("CONNECT %s: %v", target, err)
	}
	return resp.StatusCode
}

func headerLines(hdr []string) string {
	var b strings.Builder
	for _, l := range hdr {
		b.WriteString(l + "\r\n")
	}
	return b.String()
}

// TestAllowRefusesOutsiders: a client whose address is outside allow gets
// 403 for plain requests and CONNECTs alike, nothing reaches the origin,
// and the refusal is logged with its address once, however many requests
// it sends. (Before: the proxy served anyone who could reach its port.)
func TestAllowRefusesOutsiders(t *testing.T) {
	h := newHarnessUnstarted(t, testorigin.New(t))
	h.opts.Access = accessPolicy(t, access.Config{Allow: []string{"192.0.2.0/24"}, PrivateUpstreams: true}) // not 127.0.0.1
	_, port, _ := net.SplitHostPort(h.origin.Addr)
	p, _ := strconv.Atoi(port)
	h.opts.ConnectPorts = []int{p}
	h.start()
	u := h.set("/f", testorigin.Resource{Size: 100, CacheControl: "max-age=60"})
	for i := range 3 {
		if code, _, body := status(t, h.client, http.MethodGet, u); code != http.StatusForbidden || !strings.Contains(body, "allow") {
			t.Errorf("GET #%d from outside allow: %d %.80q, want 403 naming allow", i, code, body)
		}
		if code := h.rawConnect(h.origin.Addr); code != http.StatusForbidden {
			t.Errorf("CONNECT #%d from outside allow: %d, want 403", i, code)
		}
	}
	if n := len(h.origin.Requests("/f")); n != 0 {
		t.Errorf("origin saw %d requests, want none", n)
	}
	if n := h.logs.count("client=127.0.0.1"); n != 1 {
		t.Errorf("%d log lines name the refused client, want 1 (once a minute per address)", n)
	}
}

// authHarness is a harness of scheme s whose proxy asks for credentials:
// alice, password "wonderland".
func authHarness(t *testing.T, s scheme) *harness {
	hash, err := access.Hash([]byte("wonderland"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	pol := accessPolicy(t, access.Config{Allow: access.LoopbackCIDRs, ListenLoopback: true, Users: map[string]string{"alice": hash}})
	if s == intercepted {
		return newTLSHarnessWith(t, func(h *harness) { h.opts.Access = pol })
	}
	h := newHarnessUnstarted(t, testorigin.New(t))
	h.opts.Access = pol
	h.start()
	return h
}

// TestProxyAuth: with users configured, plain requests and CONNECTs
// without credentials or with wrong ones get 407 and a Basic challenge;
// good ones are served, and requests inside an intercepted tunnel need
// none of their own (the CONNECT's check covers the tunnel). The password
// never reaches the log or the origin. (Before: no credentials were asked.)
func TestProxyAuth(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		h := authHarness(t, s)
		u := h.set("/f", testorigin.Resource{Size: 1000, CacheControl: "max-age=60"})
		for _, c := range []struct{ name, user, pass string }{
			{"no credentials", "", ""}, {"wrong password", "alice", "looking-glass"}, {"unknown user", "carol", "wonderland"},
		} {
			code, hdr, _ := status(t, h.clientAs(c.user, c.pass), http.MethodGet, u)
			if code != http.StatusProxyAuthRequired {
				t.Errorf("%s: status %d, want 407", c.name, code)
			}
			if s == plainHTTP && hdr.Get("Proxy-Authenticate") != `Basic realm="resumeproxy"` {
				t.Errorf("%s: Proxy-Authenticate %q, want Basic realm=\"resumeproxy\"", c.name, hdr.Get("Proxy-Authenticate"))
			}
		}
		good := h.clientAs("alice", "wonderland")
		for i := range 2 { // a miss, then a hit over the same connection (intercepted: the same tunnel)
			if code, _, body := status(t, good, http.MethodGet, u); code != http.StatusOK || len(body) != 1000 {
				t.Errorf("GET #%d as alice: %d with %d bytes, want 200 with 1000", i, code, len(body))
			}
		}
		if n := h.logs.count("wonderland"); n != 0 {
			t.Errorf("%d log lines carry the password, want none", n)
		}
		for _, r := range h.origin.Requests("/f") {
			if r.Header.Get("Proxy-Authorization") != "" {
				t.Errorf("the origin got Proxy-Authorization %q, want none", r.Header.Get("Proxy-Authorization"))
			}
		}
	})
}

// TestProxyAuthConnect: a CONNECT is checked like a plain request.
func TestProxyAuthConnect(t *testing.T) {
	h := authHarness(t, intercepted)
	for _, c := range []struct {
		hdr  []string
		want int
	}{
		{nil, http.StatusProxyAuthRequired},
		{[]string{"Proxy-Authorization: " + access.FormatBasic("alice", "nope")}, http.StatusProxyAuthRequired},
		{[]string{"Proxy-Authorization: Basic !!!"}, http.StatusProxyAuthRequired},
		{[]string{"Proxy-Authorization: " + access.FormatBasic("alice", "wonderland")}, http.StatusOK},
	} {
		if got := h.rawConnect("origin.test:443", c.hdr...); got != c.want {
			t.Errorf("CONNECT with %q: %d, want %d", c.hdr, got, c.want)
		}
	}
}

// TestLocalUpstreamRefused: when the proxy serves beyond loopback (here an
// allow network past it), upstreams on loopback are refused with 403,
// checked on the address a name resolves to when it is dialled:
// "localhost" and (intercepted) a name the test dialer maps to 127.0.0.1,
// for cached, passed-through and tunnelled requests. The client itself,
// on 127.0.0.1, stays allowed. allow_private_upstreams lifts it. (Before:
// any client could reach the proxy machine's local services.)
func TestLocalUpstreamRefused(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		for _, private := range []bool{false, true} {
			t.Run(fmt.Sprintf("allow_private_upstreams=%v", private), func(t *testing.T) {
				testLocalUpstream(t, s, private)
			})
		}
	})
}

func testLocalUpstream(t *testing.T, s scheme, private bool) {
	pol := accessPolicy(t, access.Config{Allow: []string{"127.0.0.0/8", "192.0.2.0/24"}, ListenLoopback: true, PrivateUpstreams: private})
	var h *harness
	if s == intercepted {
		h = newTLSHarnessWith(t, func(h *harness) { h.opts.Access = pol })
	} else {
		h = newHarnessUnstarted(t, testorigin.New(t))
		h.opts.Access = pol
		_, port, _ := net.SplitHostPort(h.origin.Addr)
		p, _ := strconv.Atoi(port)
		h.opts.ConnectPorts = []int{p}
		h.start()
		h.base = "http://" + net.JoinHostPort("localhost", port)
	}
	want := http.StatusForbidden
	if private {
		want = http.StatusOK
	}
	cached := h.set("/cached", testorigin.Resource{Size: 100, CacheControl: "max-age=60"})
	passed := h.set("/passed", testorigin.Resource{Size: 100, CacheControl: "no-store"})
	for _, u := range []string{cached, passed} {
		if code, _, body := status(t, h.client, http.MethodGet, u); code != want {
			t.Errorf("GET %s: %d %.80q, want %d", u, code, body, want)
		}
	}
	if s == plainHTTP {
		_, port, _ := net.SplitHostPort(h.origin.Addr)
		if code := h.rawConnect(net.JoinHostPort("localhost", port)); code != want {
			t.Errorf("CONNECT localhost:%s: %d, want %d", port, code, want)
		}
	}
	if n := len(h.origin.Requests("/cached")) + len(h.origin.Requests("/passed")); !private && n != 0 {
		t.Errorf("origin saw %d requests, want none", n)
	}
}

// TestLoopToSelfRefused: CONNECTs and proxy requests whose target is the
// proxy's own address get 508 at once, however the address is written;
// pipelined CONNECTs to itself cannot chain tunnels into tunnels, and the
// proxy goes on serving other clients. Origin-form requests to its port
// are still its own pages. (Before: each CONNECT to itself opened a tunnel
// to itself, which read the next one; a GET was sent to itself.)
func TestLoopToSelfRefused(t *testing.T) {
	h := newHarnessUnstarted(t, testorigin.New(t))
	h.listening = func(h *harness) {
		_, port, _ := net.SplitHostPort(h.ln.Addr().String())
		p, _ := strconv.Atoi(port)
		h.opts.ConnectPorts = []int{443, p}
	}
	h.start()
	self := h.ln.Addr().String()
	_, port, _ := net.SplitHostPort(self)

	c, err := net.DialTimeout("tcp", self, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 20
	var pipelined strings.Builder
	for range n {
		fmt.Fprintf(&pipelined, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", self, self)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, pipelined.String())
	br := bufio.NewReader(c)
	answered := 0
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			if answered == 0 || !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("pipelined CONNECTs to the proxy itself: after %d answers: %v", answered, err)
			}
			break
		}
		answered++
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusLoopDetected {
			t.Fatalf("pipelined CONNECT #%d to the proxy itself: %d, want 508", answered, resp.StatusCode)
		}
	}

	for _, target := range []string{"localhost:" + port, "[::ffff:127.0.0.1]:" + port, "0.0.0.0:" + port} {
		if code := h.rawConnect(target); code != http.StatusLoopDetected {
			t.Errorf("CONNECT %s: %d, want 508", target, code)
		}
	}
	for _, u := range []string{"http://" + self + "/x", "http://localhost:" + port + "/x", "http://" + self + "/ca.pem"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			if code, _, body := status(t, h.client, method, u); code != http.StatusLoopDetected {
				t.Errorf("%s %s as a proxy request: %d %.80q, want 508", method, u, code, body)
			}
		}
	}

	u := h.set("/f", testorigin.Resource{Size: 1000, CacheControl: "max-age=60"})
	wantBody(t, "another client", h.get(u), 200, 0, 0, 1000)
	resp, err := http.Get("http://" + self + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("origin-form GET / on the proxy's port: %d, want 400 (its hint page)", resp.StatusCode)
	}
}

// TestViaLoopRefused: a request that already carries our Via pseudonym
// went through this proxy once (a loop through another proxy): 508, never
// forwarded again.
func TestViaLoopRefused(t *testing.T) {
	schemes(t, func(t *testing.T, s scheme) {
		h := newSchemeHarness(t, s)
		cached := h.set("/cached", testorigin.Resource{Size: 100, CacheControl: "max-age=60"})
		passed := h.set("/passed", testorigin.Resource{Size: 100, CacheControl: "no-store"})
		for _, u := range []string{cached, passed} {
			for _, via := range []string{"1.1 resumeproxy", "1.0 fred, 1.1 ResumeProxy (resumeproxy)", "HTTP/1.1 resumeproxy"} {
				if code, _, _ := status(t, h.client, http.MethodGet, u, "Via: "+via); code != http.StatusLoopDetected {
					t.Errorf("GET %s with Via %q: %d, want 508", u, via, code)
				}
			}
			if code, _, _ := status(t, h.client, http.MethodGet, u, "Via: 1.1 squid, 1.1 resumeproxy-other"); code != http.StatusOK {
				t.Errorf("GET %s through other proxies: %d, want 200", u, code)
			}
		}
		if n := len(h.origin.Requests("/cached")) + len(h.origin.Requests("/passed")); n != 2 {
			t.Errorf("origin saw %d requests, want 2 (only those through other proxies)", n)
		}
	})
}
