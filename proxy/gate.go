package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/resumeproxy/resumeproxy/internal/access"
)

// The gate: before anything else is done with a request, the client must
// be allowed (Options.Access: its address, then its credentials), and the
// request must not come back to this proxy (a loop). Upstream connections
// are checked again when they are dialled, on the address a name resolved
// to, so that DNS cannot point a name at the proxy's machine after a check.

// errLoop: the request or the connection would reach this proxy again.
var errLoop = errors.New("proxy: the target is this proxy (a loop)")

// refusalLogEvery and refusalLogMax bound the log lines about refused
// clients: one per address per interval, for at most max addresses.
const (
	refusalLogEvery = time.Minute
	refusalLogMax   = 1024
)

// challenge is our Basic challenge; its realm names the protection space
// (RFC 7617 §2).
const challenge = `Basic realm="resumeproxy"`

type userKey struct{}

// withUser records in ctx the user a request authenticated as: by its own
// Proxy-Authorization, or, inside an intercepted tunnel, by its CONNECT's.
func withUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

// userOf returns the user recorded by withUser, "" when none.
func userOf(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

// admit checks a client request against the access policy: its address
// must be in allow (else 403), and a proxy request or CONNECT must carry
// the credentials of a configured user (else 407 with our challenge, RFC
// 9110 §11.7.1). Origin-form requests (the proxy's own pages) need only the
// address: clients do not send Proxy-Authorization to a server. It returns
// r with the user in its context, or false when it answered.
func (p *Proxy) admit(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	client := clientAddr(r)
	if p.access.Allowed(client) != nil {
		if p.deniedLog.Allow(client, p.now()) {
			p.log.Warn("client refused: its address is not in allow (logged once a minute per address)",
				"client", client, "method", r.Method, "host", clip(r.Host))
		}
		refuse(w, http.StatusForbidden, "this client's address is not allowed to use the proxy (allow)")
		return r, false
	}
	if r.Method != http.MethodConnect && !r.URL.IsAbs() {
		return r, true
	}
	user, err := p.access.Authenticate(r.Context(), r.Header.Get("Proxy-Authorization"))
	if err != nil {
		p.authFailed(client, err)
		w.Header().Set("Proxy-Authenticate", challenge)
		refuse(w, http.StatusProxyAuthRequired, "proxy credentials required")
		return r, false
	}
	return r.WithContext(withUser(r.Context(), user)), true
}

// authFailed logs a failed authentication: wrong credentials at warn, once
// a minute per address; missing ones (a client's first try) at debug.
// Never the credentials.
func (p *Proxy) authFailed(client netip.Addr, err error) {
	if !errors.Is(err, access.ErrBadCredentials) {
		p.log.Debug("proxy credentials missing", "client", client, "err", err)
		return
	}
	if p.authLog.Allow(client, p.now()) {
		p.log.Warn("client refused: wrong proxy credentials (logged once a minute per address)", "client", client)
	}
}

// clientAddr is the address of the client that sent r; the zero Addr,
// which no network contains, when it cannot be parsed.
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// refuseLoop answers 508 Loop Detected (RFC 5842 §7.2) to a proxy request
// or CONNECT that would come back here: one that already passed through
// this proxy (our pseudonym in Via, RFC 9110 §7.6.3: a loop through
// another proxy), or whose target is one of the proxy's own addresses.
// Targets named by a host name are checked when dialled (checkDial).
func (p *Proxy) refuseLoop(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodConnect && !r.URL.IsAbs() {
		return false // the proxy's own pages
	}
	switch {
	case viaHas(r.Header, p.opts.Name):
		p.log.Warn("request refused: it already passed through this proxy (Via)", "client", r.RemoteAddr, "via", clip(strings.Join(r.Header.Values("Via"), ", ")))
	case p.isSelf(targetOf(r)):
		p.log.Warn("request refused: its target is this proxy", "client", r.RemoteAddr, "target", clip(targetOf(r)))
	default:
		return false
	}
	refuse(w, http.StatusLoopDetected, "this request would come back to the proxy (a loop)")
	return true
}

// targetOf is the host:port a proxy request or CONNECT addresses, with the
// scheme's default port when the URL has none.
func targetOf(r *http.Request) string {
	if r.Method == http.MethodConnect {
		return r.Host
	}
	port := r.URL.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(r.URL.Scheme, "https") {
			port = "443"
		}
	}
	return net.JoinHostPort(r.URL.Hostname(), port)
}

// isSelf reports whether hostport is an IP literal and port of this proxy.
func (p *Proxy) isSelf(hostport string) bool {
	ap, err := netip.ParseAddrPort(hostport)
	return err == nil && access.IsSelf(p.opts.Self, ap)
}

// viaHas reports whether a Via field of h names pseudonym as a recipient
// (RFC 9110 §7.6.3: protocol, received-by, optional comment, per element).
func viaHas(h http.Header, pseudonym string) bool {
	for _, v := range h.Values("Via") {
		for elem := range strings.SplitSeq(v, ",") {
			f := strings.Fields(elem)
			if len(f) >= 2 && strings.EqualFold(f[1], pseudonym) {
				return true
			}
		}
	}
	return false
}

// checkDial refuses a connection to addr, the IP and port about to be
// dialled (a name already resolved): one of the proxy's own addresses is a
// loop (errLoop); an address local to the proxy's machine when the policy
// guards upstreams is access.ErrLocalUpstream.
func (p *Proxy) checkDial(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return &net.AddrError{Err: "not an IP address and port", Addr: addr} // never dial what cannot be checked
	}
	if access.IsSelf(p.opts.Self, ap) {
		return errLoop
	}
	return p.access.Upstream(ap.Addr())
}

// dialFunc is the shape of http.Transport.DialContext.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// guardedDialer is the dialer of the default transport and of tunnels: its
// Control hook runs checkDial on each resolved address before connecting,
// so a refused address is never sent a packet.
func (p *Proxy) guardedDialer() *net.Dialer {
	d := newDialer()
	d.ControlContext = func(_ context.Context, _, addr string, _ syscall.RawConn) error { return p.checkDial(addr) }
	return d
}

// checkConnected wraps a dial function the proxy did not build (a given
// transport's): each connection it returns is checked on its remote
// address, the resolved one, and closed before any byte is written when
// refused.
func (p *Proxy) checkConnected(dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := p.checkDial(c.RemoteAddr().String()); err != nil {
			closeQuietly(c)
			return nil, &net.OpError{Op: "dial", Net: network, Addr: c.RemoteAddr(), Err: err}
		}
		return c, nil
	}
}

// guardTransport returns the transport upstream requests go through: rt
// with every connection checked by checkDial. The default one (rt nil),
// and a given *http.Transport without a dialer of its own, check each
// address before connecting; a given dialer is kept (tests map names with
// one) and its connections are checked once made. Any other RoundTripper
// is used as it is: its dial policy is its own.
func (p *Proxy) guardTransport(rt http.RoundTripper) http.RoundTripper {
	var t *http.Transport
	switch rt := rt.(type) {
	case nil:
		t = NewTransport()
	case *http.Transport:
		t = rt.Clone() // the caller's transport stays as it was
	default:
		return rt
	}
	if t.DialContext == nil || rt == nil {
		t.DialContext = p.guardedDialer().DialContext
	} else {
		t.DialContext = p.checkConnected(t.DialContext)
	}
	if t.DialTLSContext != nil {
		t.DialTLSContext = p.checkConnected(t.DialTLSContext)
	}
	return t
}
