package proxy

// The client's side of a response: the aborter, which reaches the client's
// connection from a response body (to cut it, to flush it, to bound each
// write), and abortOnError, the body of responses relayed from upstream.

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

type aborterKey struct{}

// aborter cuts a client connection whose response cannot be completed, so
// the client sees a truncated transfer rather than a clean short body: for
// a chunked response goproxy would otherwise write the last chunk (DESIGN
// invariant 4).
type aborter struct {
	once sync.Once
	w    http.ResponseWriter
	rc   *http.ResponseController // of w
	// writeTimeout bounds each write to the client (armWrite); 0: none.
	writeTimeout time.Duration
	// cut is set once abort has cut the connection.
	cut atomic.Bool
}

func (a *aborter) abort() {
	if a == nil {
		return // no client connection (a response built outside ServeHTTP)
	}
	a.once.Do(func() {
		a.cut.Store(true)
		conn, _, err := http.NewResponseController(a.w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
}

// clientOf returns the client connection of req's response, nil outside
// ServeHTTP; the aborter's methods accept nil.
func clientOf(req *http.Request) *aborter {
	a, _ := req.Context().Value(aborterKey{}).(*aborter)
	return a
}

// abortOnError is a pass-through body that cuts the client when the
// upstream body fails.
type abortOnError struct {
	io.ReadCloser
	client *aborter
	bufs   *buffers     // for WriteTo
	log    *slog.Logger // for a client that takes nothing
}

// WriteTo copies the body to w (the client's response) through a pooled
// buffer, one Write per Read. goproxy copies bodies with io.Copy; without
// WriteTo that hands the body to the response's ReadFrom, which flushes the
// headers with the first 512 bytes, then copies the rest through a new
// 32 KiB buffer straight to the socket: per small response, one more write
// syscall and 32 KiB to allocate and clear. Whenever the upstream pauses,
// what the response holds goes to the client (pauseFlush).
func (b *abortOnError) WriteTo(w io.Writer) (int64, error) {
	bp := b.bufs.get()
	defer b.bufs.put(bp)
	buf := *bp
	pf := newPauseFlush(b.client)
	defer pf.stop()
	var total int64
	for {
		pf.wait()
		n, err := b.ReadCloser.Read(buf)
		pf.woke()
		if n > 0 {
			b.client.armWrite()
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				if isTimeout(werr) {
					b.log.Info("client took nothing for client_write_timeout; cutting it", "at", total, "err", werr)
				}
				return total, werr
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return total, nil
		case err != nil:
			b.client.abort()
			return total, err
		}
	}
}

func (b *abortOnError) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.client.abort()
	}
	return n, err
}

// armWrite gives the next write to the client writeTimeout to complete.
// A client that takes nothing for that long (it reads nothing, or is
// gone without a word) fails the write; its response is cut and it counts
// as having left (quick abort), instead of pinning its download for as
// long as its socket stays open. Each write arms it afresh, and a
// response's last deadline stays for net/http's final flush; the next
// request on the connection starts without one (Proxy.ServeHTTP).
func (a *aborter) armWrite() {
	if a == nil || a.writeTimeout <= 0 {
		return
	}
	_ = a.rc.SetWriteDeadline(time.Now().Add(a.writeTimeout))
}
