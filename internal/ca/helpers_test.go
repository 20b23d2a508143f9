package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testAuthority builds a P-256 CA in memory, valid over [notBefore,
// notAfter], with edit (if not nil) applied to its template first: tests
// make CAs no Init would write (expired, not a CA) this way.
func testAuthority(tb testing.TB, notBefore, notAfter time.Time, edit func(*x509.Certificate)) *Authority {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return testAuthorityKey(tb, key, notBefore, notAfter, edit)
}

// testAuthorityKey is testAuthority with the CA key given.
func testAuthorityKey(tb testing.TB, key crypto.Signer, notBefore, notAfter time.Time, edit func(*x509.Certificate)) *Authority {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return &Authority{Cert: cert, Key: key, CertPEM: certPEM}
}

// writeAuthority writes a's certificate and its key as PKCS#8 into dir and
// returns their paths.
func writeAuthority(tb testing.TB, dir string, a *Authority) (certPath, keyPath string) {
	tb.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(a.Key)
	if err != nil {
		tb.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	writeFile(tb, certPath, a.CertPEM)
	writeFile(tb, keyPath, pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: keyDER}))
	return certPath, keyPath
}

// writeFile writes data to path or fails tb.
func writeFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}
