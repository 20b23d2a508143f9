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
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// noStorePrefix marks paths whose responses forbid storing (RFC 9111 §5.2.2.5).
const noStorePrefix = "/nostore/"

// options are the flags.
type options struct {
	dir, addr, addrFile          string
	tlsAddr, tlsAddrFile, caFile string
	maxAge                       int
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
	flag.Parse()
	if err := run(o); err != nil {
		log.Fatal("benchorigin: ", err)
	}
}

// run serves on the plain listener and, with o.tlsAddr, on the TLS one
// until either fails.
func run(o options) error {
	if o.tlsAddr != "" && o.caFile == "" {
		return fmt.Errorf("-tls-addr needs -ca-file: clients must be given the CA to trust")
	}
	h := handler(o.dir, o.maxAge)
	ln, err := listen("-addr", o.addr, o.addrFile)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- http.Serve(ln, h) }()
	if o.tlsAddr != "" {
		tln, err := listenTLS(o)
		if err != nil {
			return err
		}
		go func() { errc <- http.Serve(tln, h) }()
	}
	return <-errc
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
// the caching policy of the file asked for.
func handler(dir string, maxAge int) http.Handler {
	files := http.FileServer(http.Dir(dir))
	storable := fmt.Sprintf("public, max-age=%d", maxAge)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		files.ServeHTTP(w, r)
	})
}
