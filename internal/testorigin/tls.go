package testorigin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// certValidity is how long the certificates are valid, from an hour before
// they were made (clock skew between the origin and a client's check).
const certValidity = 24 * time.Hour

// NewTLS starts an origin like New behind TLS: same handler, faults and
// accounting, but URL is https://127.0.0.1:port. Each call makes its own CA
// (ECDSA P-256, in memory), so trusting one origin trusts no other. The
// server certificate it signs names 127.0.0.1, localhost, origin.test and
// *.origin.test. ALPN offers HTTP/1.1 (and HTTP/1.0, which curl --http1.0
// asks for and Go's TLS would otherwise refuse), never h2: the faults are
// cuts of an HTTP/1 connection.
func NewTLS(tb testing.TB) *Origin {
	tb.Helper()
	ca, cert, err := newCertificates(time.Now())
	if err != nil {
		tb.Fatalf("testorigin: NewTLS: %v", err)
	}
	caFile, err := writeCAFile(tb.TempDir(), ca)
	if err != nil {
		tb.Fatalf("testorigin: NewTLS: %v", err)
	}
	o := start(tb, &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"http/1.1", "http/1.0"},
		MinVersion:   tls.VersionTLS12,
	})
	o.ca, o.CAFile = ca, caFile
	return o
}

// CAPool returns a new pool holding only the CA of a TLS origin, for a
// client's tls.Config.RootCAs, or nil for a plain origin. Each call returns
// a fresh pool, so a caller may add to it.
func (o *Origin) CAPool() *x509.CertPool {
	if o.ca == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(o.ca)
	return pool
}

// newCertificates makes a CA and a server certificate it signs, both valid
// from an hour before now.
func newCertificates(now time.Time) (*x509.Certificate, tls.Certificate, error) {
	ca, caKey, err := newCA(now)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	cert, err := newServerCert(ca, caKey, now)
	return ca, cert, err
}

// newCA makes a self-signed CA certificate and its key. Its name carries
// its serial number, so two origins' CAs are told apart in error messages.
func newCA(now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, serial, err := newKeyAndSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("testorigin: CA: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("testorigin CA %x", serial)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true, // it signs the server certificate only
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("testorigin: CA: sign: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("testorigin: CA: parse: %w", err)
	}
	return ca, key, nil
}

// newServerCert makes the origin's certificate, signed by ca, for the IP
// address 127.0.0.1 and the DNS names localhost, origin.test and
// *.origin.test. A test reaching the origin through a proxy asks for one of
// the names (say registry.origin.test) and maps it to Addr; .test is
// reserved (RFC 6761 §6.2), so no real host can answer for it.
func newServerCert(ca *x509.Certificate, caKey *ecdsa.PrivateKey, now time.Time) (tls.Certificate, error) {
	key, serial, err := newKeyAndSerial()
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("testorigin: server certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "origin.test"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost", "origin.test", "*.origin.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("testorigin: server certificate: sign: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// newKeyAndSerial makes a P-256 key and a random 128-bit serial number
// (RFC 5280 §4.1.2.2: unique per CA, at most 20 octets).
func newKeyAndSerial() (*ecdsa.PrivateKey, *big.Int, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("serial number: %w", err)
	}
	return key, serial, nil
}

// writeCAFile writes ca as PEM to dir/ca.pem and returns the path.
func writeCAFile(dir string, ca *x509.Certificate) (string, error) {
	path := filepath.Join(dir, "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("testorigin: write CA file: %w", err)
	}
	return path, nil
}
