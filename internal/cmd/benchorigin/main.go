// Command benchorigin is the origin server of the benchmark (make bench): it
// serves a directory on 127.0.0.1 with http.FileServer, so the "direct"
// figures are those of Go's file server (sendfile for bodies and ranges).
//
// Every response carries a strong ETag made of the file's size and mtime,
// Last-Modified and Accept-Ranges (both from http.ServeContent), and
// Cache-Control: public, max-age=N, so that a complete entry is a hit and
// not a revalidation. Paths under /nostore/ serve the same files with
// Cache-Control: no-store instead: responses a proxy must not keep. The
// query string is ignored, so ?run=N names a distinct URL of the same file.
//
// It listens on -addr (127.0.0.1:0 by default) and writes the address it got
// to -addr-file, then serves until killed. With -tls-addr it also serves the
// same files over HTTPS (HTTP/1.1 only) with a certificate for 127.0.0.1
// signed by a CA made at start; it writes that CA's certificate (PEM) to
// -ca-file, for clients to trust (curl --cacert, SSL_CERT_FILE), before it
// writes the address to -tls-addr-file: a script that waits for the address
// finds the CA there.
//
// Throttling: -conn-rate limits the body bytes of each connection (a token
// bucket per connection, as mirrors, release CDNs and object stores limit
// each one) and -link-rate those of all connections together (one shared
// bucket, a link), both in bytes per second with IEC suffixes (32MiB); each
// bucket holds -burst bytes (256KiB). The limits apply to the TLS listener
// too and leave Range, ETags and the other headers as they are; unthrottled,
// bodies still go out with sendfile. The script runs one origin per limit.
//
// Counting: GET /.bench/stats answers one line of key=value figures:
// body_bytes (body bytes sent so far), requests, active (requests being
// served) and peak_active (most at once since the previous read: each read
// starts a new peak), so that a script can report what one download cost
// the origin and over how many connections. On SIGTERM or SIGINT the same
// line goes to the log before the origin exits.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// noStorePrefix marks paths whose responses forbid storing (RFC 9111 §5.2.2.5).
const noStorePrefix = "/nostore/"

// statsPath answers the counters instead of a file.
const statsPath = "/.bench/stats"

// options are the flags.
type options struct {
	dir, addr, addrFile          string
	tlsAddr, tlsAddrFile, caFile string
	maxAge                       int
	connRate, linkRate, burst    byteSize
}

func main() {
	var o options
	flag.StringVar(&o.dir, "dir", ".", "`directory` to serve")
	flag.StringVar(&o.addr, "addr", "127.0.0.1:0", "address to listen on (loopback only)")
	flag.StringVar(&o.addrFile, "addr-file", "", "`file` to write the listening address to")
	flag.StringVar(&o.tlsAddr, "tls-addr", "", "address to serve HTTPS on too (loopback only; empty: no HTTPS)")
	flag.StringVar(&o.tlsAddrFile, "tls-addr-file", "", "`file` to write the HTTPS listening address to")
	flag.StringVar(&o.caFile, "ca-file", "", "`file` to write the CA certificate (PEM) of the HTTPS listener to; required with -tls-addr")
	flag.IntVar(&o.maxAge, "max-age", 3600, "max-age in seconds sent with storable responses")
	o.burst = 256 << 10
	flag.Var(&o.connRate, "conn-rate", "body `bytes` per second of each connection, e.g. 32MiB (0: unlimited)")
	flag.Var(&o.linkRate, "link-rate", "body `bytes` per second of all connections together, e.g. 100MiB (0: unlimited)")
	flag.Var(&o.burst, "burst", "`bytes` each token bucket holds")
	flag.Parse()
	if err := run(o); err != nil {
		log.Fatal("benchorigin: ", err)
	}
}

// run serves on the plain listener and, with o.tlsAddr, on the TLS one
// until either fails or a signal ends it (nil: the counters are logged).
func run(o options) error {
	if o.tlsAddr != "" && o.caFile == "" {
		return fmt.Errorf("-tls-addr needs -ca-file: clients must be given the CA to trust")
	}
	t, err := newThrottle(int64(o.connRate), int64(o.linkRate), int64(o.burst))
	if err != nil {
		return err
	}
	var s stats
	srv := &http.Server{Handler: handler(o.dir, o.maxAge, t, &s), ConnContext: t.connContext}
	ln, err := listen("-addr", o.addr, o.addrFile)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if o.tlsAddr != "" {
		tln, err := listenTLS(o)
		if err != nil {
			return err
		}
		go func() { errc <- srv.Serve(tln) }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		log.Print("benchorigin: exiting: ", s.line())
		return nil
	}
}

// listenTLS makes the certificates, writes the CA to o.caFile and listens
// on o.tlsAddr.
func listenTLS(o options) (net.Listener, error) {
	cfg, caPEM, err := newTLSConfig(time.Now())
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(o.caFile, caPEM, 0o644); err != nil {
		return nil, err
	}
	ln, err := listen("-tls-addr", o.tlsAddr, o.tlsAddrFile)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(ln, cfg), nil
}

// listen listens on addr, a loopback IP address (errors name its flag, name),
// and writes the address it got to addrFile unless that is empty.
func listen(name, addr, addrFile string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", name, addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%s %s: only a loopback IP address is allowed", name, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if addrFile != "" {
		if err := os.WriteFile(addrFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return ln, nil
}

// handler serves dir with http.FileServer after setting the validator and
// the caching policy of the file asked for, its body counted in s and
// throttled by t; statsPath answers s.
func handler(dir string, maxAge int, t *throttle, s *stats) http.Handler {
	files := http.FileServer(http.Dir(dir))
	storable := fmt.Sprintf("public, max-age=%d", maxAge)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == statsPath {
			w.Header().Set("Cache-Control", "no-store")
			fmt.Fprintln(w, s.line())
			return
		}
		defer s.begin()()
		cc := storable
		if rest, ok := strings.CutPrefix(r.URL.Path, noStorePrefix); ok {
			cc = "no-store"
			r.URL.Path = "/" + rest
		}
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(path.Clean("/"+r.URL.Path))))
		if err == nil && fi.Mode().IsRegular() {
			// ServeContent uses an ETag already set for If-Range and the
			// other preconditions (RFC 9110 §13.1). Strong: the bytes of a
			// file change only with its size or mtime here.
			w.Header().Set("Etag", fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().UnixNano()))
			w.Header().Set("Cache-Control", cc)
		}
		files.ServeHTTP(bodyWriter(w, r, t, s), r)
	})
}
