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
// to -addr-file, then serves until killed.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// noStorePrefix marks paths whose responses forbid storing (RFC 9111 §5.2.2.5).
const noStorePrefix = "/nostore/"

func main() {
	dir := flag.String("dir", ".", "`directory` to serve")
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on (loopback only)")
	addrFile := flag.String("addr-file", "", "`file` to write the listening address to")
	maxAge := flag.Int("max-age", 3600, "max-age in seconds sent with storable responses")
	flag.Parse()
	if err := run(*dir, *addr, *addrFile, *maxAge); err != nil {
		log.Fatal("benchorigin: ", err)
	}
}

func run(dir, addr, addrFile string, maxAge int) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %s: only a loopback IP address is allowed", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if addrFile != "" {
		if err := os.WriteFile(addrFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			return err
		}
	}
	return http.Serve(ln, handler(dir, maxAge))
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
