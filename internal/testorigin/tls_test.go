package testorigin

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// tlsClient is client for a TLS origin: it trusts pool only (none when
// pool is nil) and speaks HTTP/1.1.
func tlsClient(t *testing.T, pool *x509.CertPool) *http.Client {
	tr := &http.Transport{DisableCompression: true, TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// newTLSOrigin returns a TLS origin serving a testSize resource r at /f and
// a client that trusts it.
func newTLSOrigin(t *testing.T, r Resource) (*Origin, *http.Client) {
	o := NewTLS(t)
	r.Size = testSize
	o.Set("/f", r)
	return o, tlsClient(t, o.CAPool())
}

func TestTLSGetWhole(t *testing.T) {
	o, c := newTLSOrigin(t, Resource{Version: 1})
	if want := "https://" + o.Addr; o.URL != want || !strings.HasPrefix(o.Addr, "127.0.0.1:") {
		t.Errorf("URL, Addr = %s, %s, want https://127.0.0.1:port, 127.0.0.1:port", o.URL, o.Addr)
	}
	resp, body := get(t, c, o.URL+"/f")
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 1 || resp.TLS == nil {
		t.Errorf("GET = %d over %s, want 200 over HTTP/1.1 with TLS", resp.StatusCode, resp.Proto)
	}
	if got, want := sha256Hex(body), Sum(1, testSize); got != want {
		t.Errorf("GET body: %d bytes, sha256 %s, want %d bytes, %s", len(body), got, testSize, want)
	}
	if got := o.BodyBytes(); got != testSize {
		t.Errorf("BodyBytes() = %d, want %d", got, testSize)
	}
}

// TestTLSCAFile checks that CAFile holds the CA of CAPool, which signed the
// certificate the origin presents.
func TestTLSCAFile(t *testing.T) {
	o, c := newTLSOrigin(t, Resource{})
	data, err := os.ReadFile(o.CAFile)
	if err != nil {
		t.Fatalf("reading CAFile: %v", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("CAFile %s holds no PEM certificate", o.CAFile)
	}
	resp, _ := get(t, c, o.URL+"/f")
	chain := resp.TLS.PeerCertificates
	if len(chain) != 1 || !bytes.Equal(chain[0].RawIssuer, mustParse(t, block.Bytes).RawSubject) {
		t.Errorf("origin's certificate is not issued by the CA in CAFile")
	}
	if err := chain[0].CheckSignatureFrom(mustParse(t, block.Bytes)); err != nil {
		t.Errorf("CheckSignatureFrom(CA in CAFile) = %v, want nil", err)
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("ParseCertificate: %v", err)
	}
	return cert
}

func TestPlainOriginHasNoCA(t *testing.T) {
	o := New(t)
	if o.CAFile != "" || o.CAPool() != nil || o.URL != "http://"+o.Addr {
		t.Errorf("plain origin: CAFile %q, CAPool %v, URL %s, Addr %s; want none, nil, http://Addr", o.CAFile, o.CAPool(), o.URL, o.Addr)
	}
}

// TestTLSServerNames checks the names a client may ask for: a proxy
// connects for a name such as registry.origin.test.
func TestTLSServerNames(t *testing.T) {
	o := NewTLS(t)
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"127.0.0.1", true},
		{"localhost", true},
		{"origin.test", true},
		{"registry.origin.test", true},
		{"a.b.origin.test", false}, // a wildcard covers one label
		{"example.com", false},
	} {
		conn, err := tls.Dial("tcp", o.Addr, &tls.Config{
			RootCAs: o.CAPool(), ServerName: tc.name, NextProtos: []string{"h2", "http/1.1"},
		})
		if (err == nil) != tc.ok {
			t.Errorf("tls.Dial(ServerName %s) error = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil {
			continue
		}
		// The faults are cuts of HTTP/1.1 connections: no h2 even when asked.
		if p := conn.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
			t.Errorf("tls.Dial(ServerName %s, ALPN h2, http/1.1) negotiated %q, want http/1.1", tc.name, p)
		}
		conn.Close()
	}
}

// TestTLSUntrusted checks that a client without the origin's CA, or with
// another origin's, fails verification: each origin has its own CA.
func TestTLSUntrusted(t *testing.T) {
	a, b := NewTLS(t), NewTLS(t)
	a.Set("/f", Resource{Size: 10})
	if a.CAPool().Equal(b.CAPool()) || a.CAFile == b.CAFile {
		t.Fatalf("two TLS origins share a CA (CAFile %s and %s)", a.CAFile, b.CAFile)
	}
	for name, pool := range map[string]*x509.CertPool{"no CA": x509.NewCertPool(), "other origin's CA": b.CAPool()} {
		_, err := tlsClient(t, pool).Get(a.URL + "/f")
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("%s: GET error = %v, want %T", name, err, unknown)
		}
	}
	if n := a.BodyBytes(); n != 0 {
		t.Errorf("BodyBytes() = %d after failed handshakes, want 0", n)
	}
}

// TestTLSDropAtResume checks that a drop cuts a TLS response so that it
// looks failed, and that resuming with Range completes the file.
func TestTLSDropAtResume(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			o, c := newTLSOrigin(t, Resource{Version: 4, Chunked: chunked})
			o.DropAt("/f", 100_001)
			_, body, err := fetch(t, c, http.MethodGet, o.URL+"/f")
			if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(body, bytesOf(4, 0, 100_001)) {
				t.Fatalf("cut GET: %d bytes, error %v; want bytes [0,100001) and %v", len(body), err, io.ErrUnexpectedEOF)
			}
			resp, rest := get(t, c, o.URL+"/f", "Range", "bytes=100001-", "If-Range", `"v4-300000"`)
			if resp.StatusCode != http.StatusPartialContent || sha256Hex(append(body, rest...)) != Sum(4, testSize) {
				t.Errorf("resume = %d with %d bytes, want 206 completing the file", resp.StatusCode, len(rest))
			}
			if n := o.BodyBytes(); n != testSize {
				t.Errorf("BodyBytes() = %d, want %d: every byte sent once", n, testSize)
			}
		})
	}
}

// TestTLSStall checks that a stalled TLS response is released both by the
// client going away and by the origin closing.
func TestTLSStall(t *testing.T) {
	ended := make(chan struct{}, 2)
	readErr := make(chan error, 1)
	t.Run("origin", func(t *testing.T) {
		o, c := newTLSOrigin(t, Resource{Version: 7})
		o.mu.Lock()
		o.stallEnded = ended
		o.mu.Unlock()
		o.StallAt("/f", 65_000)
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, o.URL+"/f", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 65_000)); err != nil {
			t.Fatalf("reading up to the stall: %v", err)
		}
		cancel()
		resp.Body.Close()
		<-ended // hangs (and go test -timeout reports it) if the stall ignores the client

		o.StallAt("/f", 10)
		resp, err = c.Get(o.URL + "/f")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		go func() {
			_, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			readErr <- err
		}()
	})
	<-ended
	if err := <-readErr; !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("client of a stalled response after close: %v, want %v", err, io.ErrUnexpectedEOF)
	}
}
