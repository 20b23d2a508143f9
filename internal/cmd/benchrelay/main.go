// Command benchrelay is the least a forward proxy built on net/http does
// for a plain-HTTP GET: read the request, send it upstream over a kept-alive
// connection, copy the answer back. Nothing is stored, checked, keyed or
// logged. make bench runs the small pass-through GETs through it beside
// resumeproxy, Squid, nginx and tinyproxy, so that the table shows what
// net/http itself costs per request on the machine: resumeproxy is built on
// it (through goproxy), and cannot relay a small GET for less.
//
// It listens on -addr (loopback only) and writes the address it got to
// -addr-file.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on (loopback only)")
	addrFile := flag.String("addr-file", "", "`file` to write the listening address to")
	flag.Parse()
	if err := run(*addr, *addrFile); err != nil {
		log.Fatal(err)
	}
}

func run(addr, addrFile string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		return errors.New("listen: loopback addresses only")
	}
	if addrFile != "" {
		if err := os.WriteFile(addrFile, []byte(ln.Addr().String()), 0o644); err != nil {
			return fmt.Errorf("writing the address: %w", err)
		}
	}
	// As many idle upstream connections as the benchmark's clients keep.
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true, Proxy: nil}
	return http.Serve(ln, relay(tr))
}

// relay forwards each absolute-form request with tr and copies the answer
// back: status, header and body, as they came.
func relay(tr http.RoundTripper) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() || r.URL.Scheme != "http" {
			http.Error(w, "benchrelay relays plain-HTTP requests in absolute form only", http.StatusBadRequest)
			return
		}
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.Header.Del("Proxy-Connection")
		resp, err := tr.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body) //nolint:errcheck // a client that left is the client's business
	})
}
