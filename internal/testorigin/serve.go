package testorigin

import (
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"time"
)

// serve is the origin's handler. It reads top to bottom: record, inject a
// failure, let the path's guard answer, find the resource, decide by RFC
// 9110 §13.2.2, answer.
func (o *Origin) serve(w http.ResponseWriter, r *http.Request) {
	// RFC 9110 §6.6.1: an origin with a clock sends Date. Set it here so
	// every response, including failures, carries the real time.
	w.Header().Set("Date", time.Now().UTC().Format(http.TimeFormat))
	fail, guard, res := o.arrive(r.URL.Path, r)
	switch {
	case fail.status != 0:
		if fail.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(int64(fail.retryAfter/time.Second), 10))
		}
		writeShort(w, r, fail.status, "testorigin: injected failure\n")
		return
	case guard != nil && guard(w, r):
		return // a redirect, a token, or a refusal
	case res == nil:
		writeShort(w, r, http.StatusNotFound, "testorigin: no resource\n")
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		writeShort(w, r, http.StatusMethodNotAllowed, "testorigin: GET and HEAD only\n")
		return
	case o.lieNotModified(w, r, *res):
		return
	}
	res.setHeaders(w.Header())
	p := decide(r.Method, r.Header, res.representation())
	switch p.status {
	case http.StatusOK, http.StatusPartialContent:
		o.serveContent(w, r, *res, p)
	case http.StatusRequestedRangeNotSatisfiable:
		// RFC 9110 §15.5.17: say how long the representation is.
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(res.Size, 10))
		writeShort(w, r, p.status, "testorigin: range not satisfiable\n")
	default: // 304 and 412 carry no content
		w.WriteHeader(p.status)
	}
}

// writeShort sends status with a short text body (none for HEAD). These
// bodies are not content and are not counted.
func writeShort(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(msg)) // a client that went away needs no message
	}
}

// serveContent sends a 200 or 206 for res, applying the faults the response
// consumes. Headers go out before the first byte so that a chunked response
// is chunked even when it is cut before any content.
func (o *Origin) serveContent(w http.ResponseWriter, r *http.Request, res Resource, p plan) {
	h := w.Header()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/octet-stream")
	}
	if !res.Chunked {
		h.Set("Content-Length", strconv.FormatInt(p.rng.length(), 10))
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(p.status) // HEAD consumes no fault: it has no body to cut
		return
	}
	fault, shift := o.takeBodyFaults(r.URL.Path, p.status == http.StatusPartialContent)
	if fault.done != nil {
		defer close(fault.done)
	}
	if p.status == http.StatusPartialContent {
		if res.PartialContentType != "" {
			h.Set("Content-Type", res.PartialContentType)
		}
		h.Set("Content-Range", p.rng.contentRange(res.Size, shift))
		p.status, res = o.liePartial(r.URL.Path, h, res)
	}
	w.WriteHeader(p.status)
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return
	}
	stop, action := fault.cutAt(p.rng)
	o.sending(r.URL.Path, 1)
	defer o.sending(r.URL.Path, -1)
	if o.writeContent(w, rc, r, res, httpRange{p.rng.start, stop}, fault.drip) != nil {
		return // the client went away; nothing left to cut
	}
	o.act(rc, r, action)
}

// writeContent writes bytes rng of res's content in blockSize writes (or
// d.n, pausing d.every between writes, for a Drip), flushing each so that
// the client sees exactly the bytes before a cut. Each write is counted
// before it is made and corrected after, so the count never lags what the
// client has read.
func (o *Origin) writeContent(w http.ResponseWriter, rc *http.ResponseController, r *http.Request, res Resource, rng httpRange, d drip) error {
	path := r.URL.Path
	size := int64(blockSize)
	if d.n > 0 {
		size = min(d.n, blockSize)
	}
	if res.Rate > 0 && d.n == 0 {
		size = min(size, max(res.Rate/512, 1)) // 512 writes a second: smooth, as a token bucket with a small burst
	}
	buf := make([]byte, size)
	start := time.Now()
	for off := rng.start; off < rng.end; {
		if d.n > 0 && off > rng.start {
			if err := o.pause(r, d.every); err != nil {
				return err
			}
		}
		if res.Rate > 0 && d.n == 0 {
			due := start.Add(time.Duration(float64(off-rng.start) / float64(res.Rate) * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				if err := o.pause(r, wait); err != nil {
					return err
				}
			}
		}
		b := buf[:min(rng.end-off, size)]
		res.content(off, b)
		o.count(path, int64(len(b)))
		n, err := w.Write(b)
		if n < len(b) {
			o.count(path, int64(n-len(b)))
		}
		if err != nil {
			return err
		}
		if err := rc.Flush(); err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}

// pause waits for d, or returns an error when the client or the origin
// goes away first.
func (o *Origin) pause(r *http.Request, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-r.Context().Done():
		return r.Context().Err()
	case <-o.done:
		return net.ErrClosed
	}
}

// act performs the cut action once a response has reached its cut offset.
func (o *Origin) act(rc *http.ResponseController, r *http.Request, action cutAction) {
	switch action {
	case actNone:
		return
	case actStall:
		select {
		case <-r.Context().Done():
		case <-o.done:
		}
		if ch := o.stallEndedChan(); ch != nil {
			ch <- struct{}{}
		}
	case actChangeVersion:
		// Change first, so that the client's retry, which can only start
		// after the cut, already finds the new version.
		o.bumpVersion(r.URL.Path)
	case actReplace:
		o.replaceContent(r.URL.Path)
	}
	drop(rc)
}

// drop ends a response so that it looks failed, never complete
// (DESIGN.md invariant 4): it takes the connection from the server and
// closes it, so a Content-Length is left unmet and a chunked body has no
// last chunk. Bytes already written were flushed by writeContent.
func drop(rc *http.ResponseController) {
	conn, _, err := rc.Hijack()
	if err != nil {
		// Not HTTP/1 (or already gone): aborting the handler makes the
		// server reset the stream or close the connection instead.
		panic(http.ErrAbortHandler)
	}
	_ = transport(conn).Close() // the close is the fault; its error tells nothing more
}

// transport returns the TCP connection under a TLS one, or c itself. drop
// closes it without sending a TLS close_notify, which says the data ended
// there: a body delimited by the close (a chunked resource asked for over
// HTTP/1.0) would look complete. Without it, RFC 8446 §6.1 lets the client
// see a truncation, as if the network had failed (wget does; curl and Go's
// crypto/tls accept an EOF between records and rely on HTTP's framing).
func transport(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return c
}
