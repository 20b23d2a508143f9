package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// CONNECT is handled here, not by goproxy. Its CONNECT path does not fit:
// ConnectHijack drops the bytes a client sent right behind the CONNECT
// (they sit in the server's read buffer), and ConnectMitm serves the
// decrypted requests in a loop of its own that never cancels a request when
// the client leaves, has no idle timeout, is not reached by Shutdown and
// answers an upstream failure with an empty reply. So a CONNECT is checked
// here, then either tunnelled (tunnel.go) or intercepted (intercept.go):
// the decrypted requests go through an http.Server of ours back into
// ServeHTTP, where goproxy's request flow and our cache serve them exactly
// as they serve plain HTTP.

// serveConnect answers one CONNECT: 400 for a target without host:port,
// 403 for a port outside ConnectPorts, then a tunnel or an interception.
func (p *Proxy) serveConnect(w http.ResponseWriter, r *http.Request) {
	host, port, err := connectTarget(r)
	if err != nil {
		refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	if !slices.Contains(p.opts.ConnectPorts, port) {
		p.log.Info("CONNECT refused: port not in connect_ports", "client", r.RemoteAddr, "target", clip(r.Host))
		refuse(w, http.StatusForbidden, "CONNECT to port "+strconv.Itoa(port)+" is not allowed (connect_ports)")
		return
	}
	target := net.JoinHostPort(host, strconv.Itoa(port))
	if p.intercepts(host) {
		p.intercept(w, r, target)
		return
	}
	p.tunnel(w, r, target)
}

// connectTarget returns the host and port a CONNECT names (RFC 9110
// §9.3.6: the authority form, host and port both required).
func connectTarget(r *http.Request) (string, int, error) {
	host, ps, err := net.SplitHostPort(r.Host)
	if err != nil || host == "" {
		return "", 0, errBadConnect
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, errBadConnect
	}
	return strings.ToLower(host), port, nil
}

// intercepts reports whether a CONNECT to host is decrypted and served
// through the cache: interception is on, host is in mitm.hosts (all when
// empty) and not in mitm.bypass.
func (p *Proxy) intercepts(host string) bool {
	m := p.opts.MITM
	if m == nil || m.Bypass.Match(host) {
		return false
	}
	return m.Hosts.Len() == 0 || m.Hosts.Match(host)
}

// refuse answers a CONNECT (or a request inside a tunnel) the proxy will
// not carry out, with a short text body, and closes the connection.
func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Connection", "close")
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "resumeproxy: "+msg, status)
}

// hijack takes the client connection from the server. Bytes the client sent
// behind its CONNECT (a TLS ClientHello, say) are already in br: the
// returned connection reads them first.
func hijack(w http.ResponseWriter) (net.Conn, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	if brw.Reader.Buffered() == 0 {
		return conn, nil
	}
	return &bufferedConn{Conn: conn, r: brw.Reader}, nil
}

// bufferedConn is a connection whose first bytes were read ahead into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader // reads the buffered bytes, then the connection
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// established is the CONNECT reply that opens the tunnel.
const established = "HTTP/1.1 200 Connection established\r\n\r\n"

// dialer returns the function that opens connections to upstreams: the
// transport's own when it has one (so tests that map names to a local
// origin, and any operator dial policy, apply to tunnels too; New made it
// check each address), else one that checks each address (checkDial).
func (p *Proxy) dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if t, ok := p.opts.Transport.(*http.Transport); ok && t.DialContext != nil {
		return t.DialContext
	}
	return p.guardedDialer().DialContext
}

// closeQuietly closes c; the error of closing a connection we are done with
// tells nothing.
func closeQuietly(c io.Closer) { _ = c.Close() }
