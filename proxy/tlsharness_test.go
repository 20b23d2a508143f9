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
	h := newHarnessUnstarted(t, testorigin.NewTLS(t))
	auth := testCA(t)
	h.leaves = ca.NewLeaves(auth, 100)
	h.opts.MITM = &Interception{Certs: h.leaves, CAPEM: auth.CertPEM}
	h.opts.Transport = originTransport(h.origin, map[string]*testorigin.Origin{"origin.test": h.origin})
	h.base = "https://origin.test"
	h.clientTLS = &tls.Config{RootCAs: certPool(auth.Cert)}
	h.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(h.caFile, auth.CertPEM, 0o644); err != nil {
		t.Fatalf("writing the CA file: %v", err)
	}
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
// TLS trusting trusted's CA only, and a dialer that sends a name (or any
// subdomain of it) on any port to its origin's address. Other addresses
// are dialled as they are.
func originTransport(trusted *testorigin.Origin, names map[string]*testorigin.Origin) *http.Transport {
	tr := NewTransport()
	tr.TLSClientConfig = &tls.Config{RootCAs: trusted.CAPool()}
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		for name, o := range names {
			if host == name || strings.HasSuffix(host, "."+name) {
				addr = o.Addr
			}
		}
		return d.DialContext(ctx, network, addr)
	}
	return tr
}
