package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/internal/ca"
	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

// newTLSHarness is a harness whose origin speaks HTTPS and whose proxy
// intercepts: the client trusts our CA (and nothing else), the proxy
// trusts the origin's CA, and every name under origin.test reaches the
// origin on port 443, as a real download host would be reached. caFile
// holds our CA for clients that are separate programs.
func newTLSHarness(t *testing.T) *harness {
	t.Helper()
	return newTLSHarnessWith(t, nil)
}

// newTLSHarnessWith is newTLSHarness with configure run on the harness
// before the proxy starts (to change h.opts, h.names).
func newTLSHarnessWith(t *testing.T, configure func(h *harness)) *harness {
	t.Helper()
	h := newHarnessUnstarted(t, testorigin.NewTLS(t))
	h.auth = testCA(t)
	h.leaves = ca.NewLeaves(h.auth, 100)
	h.opts.MITM = &Interception{Certs: h.leaves, CAPEM: h.auth.CertPEM}
	h.names = map[string]string{"origin.test": h.origin.Addr}
	h.base = "https://origin.test"
	h.clientTLS = &tls.Config{RootCAs: certPool(h.auth.Cert)}
	h.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(h.caFile, h.auth.CertPEM, 0o644); err != nil {
		t.Fatalf("writing the CA file: %v", err)
	}
	if configure != nil {
		configure(h)
	}
	h.opts.Transport = originTransport(h.origin.CAPool(), h.names)
	h.start()
	return h
}

// testCA makes a new interception CA for one test.
func testCA(t *testing.T) *ca.Authority {
	t.Helper()
	certPath, keyPath, err := ca.Init(t.TempDir(), time.Now())
	if err != nil {
		t.Fatalf("ca.Init: %v", err)
	}
	auth, err := ca.Load(certPath, keyPath, time.Now())
	if err != nil {
		t.Fatalf("ca.Load: %v", err)
	}
	return auth
}

func certPool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// originTransport is the proxy's upstream transport for tests: verified
// TLS trusting roots only, and a dialer that sends a name (or any
// subdomain of it) on any port to its address in names. Other addresses
// are dialled as they are.
func originTransport(roots *x509.CertPool, names map[string]string) *http.Transport {
	tr := NewTransport()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		for name, a := range names {
			if host == name || strings.HasSuffix(host, "."+name) {
				addr = a
			}
		}
		return d.DialContext(ctx, network, addr)
	}
	return tr
}
