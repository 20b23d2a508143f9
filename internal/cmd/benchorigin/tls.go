package main

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
	"time"
)

// certValidity is how long the certificates are valid, from an hour before
// the origin started (clock skew). A bench run takes minutes.
const certValidity = 24 * time.Hour

// newTLSConfig makes a CA and a server certificate it signs for 127.0.0.1
// and localhost (ECDSA P-256, in memory, new at every start), and returns
// the server's config and the CA in PEM for clients to trust. ALPN offers
// HTTP/1.1 only, like the proxy's interception, so that direct and proxied
// HTTPS runs speak the same protocol.
func newTLSConfig(now time.Time) (*tls.Config, []byte, error) {
	caKey, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	caTmpl, err := template(now, pkix.Name{CommonName: "benchorigin CA"})
	if err != nil {
		return nil, nil, err
	}
	caTmpl.IsCA, caTmpl.BasicConstraintsValid, caTmpl.MaxPathLenZero = true, true, true
	caTmpl.KeyUsage = x509.KeyUsageCertSign
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA: %w", err)
	}
	cert, err := newServerCert(now, ca, caKey)
	if err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
	return cfg, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

// newServerCert makes the origin's certificate, signed by ca, for the IP
// address 127.0.0.1 (the URLs of the bench) and the name localhost.
func newServerCert(now time.Time, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (tls.Certificate, error) {
	key, err := newKey()
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl, err := template(now, pkix.Name{CommonName: "localhost"})
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	tmpl.DNSNames = []string{"localhost"}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("sign server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// template is what both certificates share: subject, validity and a random
// 128-bit serial number (RFC 5280 §4.1.2.2: unique per CA, ≤ 20 octets).
func template(now time.Time, subject pkix.Name) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
	}, nil
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return key, nil
}
