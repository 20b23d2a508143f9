package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/resumeproxy/resumeproxy/internal/hostglob"
)

// Interception configures HTTPS interception (--mitm): CONNECTs to the
// hosts it selects are decrypted with a certificate from Certs and served
// through the cache like plain HTTP.
type Interception struct {
	// Certs issues the certificate shown to clients for a server name.
	// Required.
	Certs CertSource
	// CAPEM is the CA certificate in PEM, served at /ca.pem so that a client
	// machine can fetch what it must trust.
	CAPEM []byte
	// Hosts selects the CONNECT targets to intercept. Empty: all.
	Hosts hostglob.List
	// Bypass selects targets that are tunnelled untouched even when Hosts
	// matches them: clients that pin certificates. Empty: none.
	Bypass hostglob.List
}

// CertSource issues the leaf certificate for a server name (an SNI name or,
// without SNI, the CONNECT host). *ca.Leaves is one.
type CertSource interface {
	Get(name string) (*tls.Certificate, error)
}

// handshakeTimeout bounds the TLS handshake with an intercepted client.
const handshakeTimeout = 15 * time.Second

// interceptor serves the decrypted connections: an http.Server of its own
// (keep-alive, request parsing and limits, request contexts cancelled when
// the client leaves, idle timeout, graceful shutdown) whose connections come
// from CONNECTs instead of a listener.
type interceptor struct {
	srv *http.Server
	ln  *connListener

	// mu guards refused.
	mu sync.Mutex
	// refused holds hosts whose refusal of our certificate was logged, so
	// it is logged once per host, not per connection. Bounded: cleared
	// when it reaches maxRefusedHosts.
	refused map[string]struct{}
}

// maxRefusedHosts bounds interceptor.refused.
const maxRefusedHosts = 4096

func (p *Proxy) newInterceptor() *interceptor {
	m := &interceptor{ln: newConnListener(), refused: map[string]struct{}{}}
	m.srv = newHTTPServer(http.HandlerFunc(p.serveIntercepted), p.log)
	// HTTP/1.1 only: an HTTP/2 stream ends a failed body with a clean
	// END_STREAM unless reset explicitly, and a truncated download must
	// look truncated (DESIGN invariant 4).
	m.srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	m.srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if ic, ok := c.(*interceptedConn); ok {
			return withUser(context.WithValue(ctx, targetKey{}, ic.target), ic.user)
		}
		return ctx
	}
	go func() { _ = m.srv.Serve(m.ln) }() // ends when the listener closes
	return m
}

// interceptedConn is a client connection after the TLS handshake, with the
// CONNECT target it was opened for. It hides *tls.Conn from http.Server,
// which would otherwise redo the (finished) handshake bookkeeping.
type interceptedConn struct {
	net.Conn
	target string // host:port of the CONNECT
	// user is who the CONNECT authenticated as: its check covers every
	// request in the tunnel.
	user string
}

type targetKey struct{}

// intercept answers a CONNECT with 200, makes the TLS handshake with a leaf
// for the client's SNI (the CONNECT host without SNI) and hands the
// connection to the interceptor's server.
func (p *Proxy) intercept(w http.ResponseWriter, r *http.Request, target string) {
	host, _, _ := net.SplitHostPort(target)
	client, err := hijack(w)
	if err != nil {
		p.log.Warn("CONNECT: cannot take the connection", "err", clipErr(err))
		return
	}
	if _, err := io.WriteString(client, established); err != nil {
		closeQuietly(client)
		return
	}
	var sentCert bool
	tc := tls.Server(client, p.leafConfig(host, &sentCert))
	_ = client.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		p.handshakeFailed(host, r.RemoteAddr, sentCert, err)
		closeQuietly(client)
		return
	}
	_ = client.SetDeadline(time.Time{})
	if !p.mitm.ln.push(&interceptedConn{Conn: tc, target: target, user: userOf(r.Context())}) {
		closeQuietly(tc) // shutting down
	}
}

// leafConfig is the server side of one intercepted handshake. sentCert
// records that a certificate was chosen, so a client that hangs up after
// it can be told from one that never got that far.
func (p *Proxy) leafConfig(host string, sentCert *bool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			name := hello.ServerName
			if name == "" {
				name = host // no SNI: IP literals, old clients
			}
			c, err := p.opts.MITM.Certs.Get(name)
			*sentCert = err == nil
			return c, err
		},
	}
}

// handshakeFailed logs a failed interception handshake. A client that
// rejects our certificate (it pins the real one, or does not trust our CA)
// is logged once per host, at warn, with the fix; other failures (scanners,
// timeouts) at debug.
func (p *Proxy) handshakeFailed(host, client string, sentCert bool, err error) {
	if !refusedCertificate(err, sentCert) {
		p.log.Debug("intercept: TLS handshake failed", "host", clip(host), "client", client, "err", clipErr(err))
		return
	}
	if !p.mitm.firstRefusal(host) {
		p.log.Debug("intercept: certificate refused again (reported once per host)", "host", clip(host), "client", client, "err", clipErr(err))
		return
	}
	p.log.Warn("a client refused the interception certificate for "+clip(host)+
		": make it trust the CA (resumeproxy ca cert; see the README), or add the host to mitm.bypass",
		"host", clip(host), "client", client, "err", clipErr(err))
}

// refusedCertificate reports whether a handshake error means the client
// rejected our certificate: a certificate alert (crypto/tls reports remote
// alerts only as text), or any failure but a timeout once the certificate
// was sent. Clients refuse in many ways: some hang up (pinning apps), and
// curl with TLS 1.3 sends an alert that reads here as "bad record MAC".
func refusedCertificate(err error, sentCert bool) bool {
	msg := err.Error()
	if strings.Contains(msg, "remote error: tls:") && strings.Contains(msg, "certificate") {
		return true
	}
	return sentCert && !isTimeout(err)
}

// firstRefusal records a refusal for host and reports whether it is the
// first one.
func (m *interceptor) firstRefusal(host string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.refused[host]; ok {
		return false
	}
	if len(m.refused) >= maxRefusedHosts {
		clear(m.refused)
	}
	m.refused[host] = struct{}{}
	return true
}

// serveIntercepted serves one decrypted request: it must address the
// CONNECT's host (else 421: never sent elsewhere), then it becomes an
// absolute https URL and takes the same path as a plain proxy request,
// after the gate: the CONNECT was admitted, so it needs no credentials.
func (p *Proxy) serveIntercepted(w http.ResponseWriter, r *http.Request) {
	target, _ := r.Context().Value(targetKey{}).(string)
	if r.Method == http.MethodConnect {
		refuse(w, http.StatusMethodNotAllowed, "CONNECT inside an intercepted tunnel")
		return
	}
	authority := r.Host
	if r.URL.IsAbs() { // RFC 9112 §3.2.2: the target's authority wins over Host
		authority = r.URL.Host
		if !strings.EqualFold(r.URL.Scheme, "https") {
			refuse(w, http.StatusBadRequest, "only https URLs inside an intercepted tunnel")
			return
		}
	}
	if !sameAuthority(authority, target) {
		p.log.Info("request refused: host differs from its tunnel's", "host", clip(authority), "tunnel", clip(target), "client", r.RemoteAddr)
		refuse(w, http.StatusMisdirectedRequest, "this connection was opened for "+target+", not "+authority)
		return
	}
	r.URL.Scheme, r.URL.Host = "https", target
	p.observed(w, r, p.route)
}

// sameAuthority reports whether authority (a Host field, port optional:
// 443 by default) names the same host and port as target (host:port).
// Host names compare without case and without a trailing dot.
func sameAuthority(authority, target string) bool {
	th, tp, err := net.SplitHostPort(target)
	if err != nil {
		return false
	}
	h, port := authority, "443"
	if hh, pp, err := net.SplitHostPort(authority); err == nil {
		h, port = hh, pp
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1] // IPv6 literal without port
	}
	norm := func(s string) string { return strings.TrimSuffix(strings.ToLower(s), ".") }
	return norm(h) == norm(th) && port == tp
}

// connListener is a net.Listener whose connections are pushed to it: the
// intercepted connections, after their handshake.
type connListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newConnListener() *connListener {
	return &connListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// push hands c to the server; false once the listener is closed.
func (l *connListener) push(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return interceptAddr{} }

// interceptAddr names the interceptor's listener, which has no socket.
type interceptAddr struct{}

func (interceptAddr) Network() string { return "intercept" }
func (interceptAddr) String() string  { return "intercepted CONNECTs" }
