package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// tunnel connects the client to target and copies bytes both ways, untouched,
// until both sides are done, either side fails, or nothing moves for
// TunnelIdleTimeout. The dial happens before the client is told anything,
// so a failed dial is a 502 (504 on a timeout) with the reason, not a
// tunnel that closes at once.
func (p *Proxy) tunnel(w http.ResponseWriter, r *http.Request, target string) {
	ctx, cancel := context.WithTimeout(r.Context(), dialTimeout)
	up, err := p.dialer()(ctx, "tcp", target)
	cancel()
	if err != nil {
		p.log.Warn("CONNECT: dial failed", "target", clip(target), "err", clipErr(err))
		resp := upstreamErrorResponse(r, err)
		refuse(w, resp.StatusCode, "cannot reach "+target+": "+err.Error())
		return
	}
	client, err := hijack(w)
	if err != nil {
		closeQuietly(up)
		p.log.Warn("CONNECT: cannot take the connection", "err", clipErr(err))
		return
	}
	if _, err := io.WriteString(client, established); err != nil {
		closeQuietly(up)
		closeQuietly(client)
		return
	}
	p.conns.run(func() { newPipe(client, up, p.opts.TunnelIdleTimeout).run() }, client, up)
}

// dialTimeout bounds a tunnel's connection attempt, as the transport's
// dialer bounds the proxy's own.
const dialTimeout = 15 * time.Second

// pipe copies bytes between two connections. Each direction reads with a
// deadline of idle; a read that times out ends the pipe only when the other
// direction was idle too, so a long download with a silent client (or an
// upload with a silent server) is never cut.
type pipe struct {
	a, b net.Conn
	idle time.Duration
	// last is when a byte last moved either way (UnixNano).
	last atomic.Int64
}

func newPipe(a, b net.Conn, idle time.Duration) *pipe {
	t := &pipe{a: a, b: b, idle: idle}
	t.touch()
	return t
}

// run copies both ways until both are done, then closes both connections.
func (t *pipe) run() {
	var wg sync.WaitGroup
	wg.Go(func() { t.copy(t.b, t.a) })
	wg.Go(func() { t.copy(t.a, t.b) })
	wg.Wait()
	closeQuietly(t.a)
	closeQuietly(t.b)
}

// copy moves bytes from src to dst. At src's end it half-closes dst, so the
// other side sees the end of stream and the other direction can finish; on
// any failure it closes both, which ends the other direction too.
func (t *pipe) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		_ = src.SetReadDeadline(time.Now().Add(t.idle))
		n, err := src.Read(buf)
		if n > 0 {
			t.touch()
			_ = dst.SetWriteDeadline(time.Now().Add(t.idle))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF) && closeWrite(dst) == nil:
			return
		case isTimeout(err) && t.activeWithin(t.idle):
		default:
			closeQuietly(t.a)
			closeQuietly(t.b)
			return
		}
	}
}

func (t *pipe) touch() { t.last.Store(time.Now().UnixNano()) }

func (t *pipe) activeWithin(d time.Duration) bool {
	return time.Since(time.Unix(0, t.last.Load())) < d
}

// closeWrite half-closes c when it can (TCP, TLS), so the peer reads the
// end of stream while the other direction goes on.
func closeWrite(c net.Conn) error {
	if bc, ok := c.(*bufferedConn); ok {
		c = bc.Conn
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// conns tracks connections taken from the server (tunnels, intercepted
// connections), which http.Server.Shutdown no longer sees, so that shutdown
// can wait for them and then close them.
type conns struct {
	// mu guards set and closed.
	mu     sync.Mutex
	set    map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// run runs f in a goroutine with cs tracked until f returns. Once shutdown
// has begun, it closes cs at once instead.
func (c *conns) run(f func(), cs ...net.Conn) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		for _, x := range cs {
			closeQuietly(x)
		}
		return
	}
	if c.set == nil {
		c.set = map[net.Conn]struct{}{}
	}
	for _, x := range cs {
		c.set[x] = struct{}{}
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		defer c.forget(cs)
		f()
	}()
}

func (c *conns) forget(cs []net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range cs {
		delete(c.set, x)
	}
}

// shutdown refuses new connections, waits until every tracked goroutine
// has ended or ctx is done, then closes what is left.
func (c *conns) shutdown(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true // no Add after this: Wait below is not racing one
	c.mu.Unlock()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	c.mu.Lock()
	for x := range c.set {
		closeQuietly(x)
	}
	c.mu.Unlock()
	return ctx.Err()
}
