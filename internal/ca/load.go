package ca

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
)

// Authority is a loaded, validated CA.
type Authority struct {
	// Cert is the CA certificate; leaves are signed as issued by it.
	Cert *x509.Certificate
	// Key is the CA's private key, matching Cert's public key.
	Key crypto.Signer
	// CertPEM is Cert alone as PEM, for GET /ca.pem and `resumeproxy ca
	// cert`: what a user installs in a trust store.
	CertPEM []byte
}

// PEM block types a key file may hold.
const (
	pemPKCS8 = "PRIVATE KEY"
	pemSEC1  = "EC PRIVATE KEY"
	pemPKCS1 = "RSA PRIVATE KEY"
)

// Load reads and validates the CA in certPath and keyPath as of now, so
// that a bad CA fails at start and never at the first intercepted request.
// Errors name the file and the reason; a missing file is ErrNoCA.
func Load(certPath, keyPath string, now time.Time) (*Authority, error) {
	cert, err := loadCert(certPath, now)
	if err != nil {
		return nil, err
	}
	key, err := loadKey(keyPath)
	if err != nil {
		return nil, err
	}
	if !publicKeyEqual(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("ca: load key %s: does not match the public key of certificate %s", keyPath, certPath)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	return &Authority{Cert: cert, Key: key, CertPEM: certPEM}, nil
}

// loadCert reads the CA certificate in path and checks it can sign leaves
// at now.
func loadCert(path string, now time.Time) (*x509.Certificate, error) {
	block, err := readBlock(path, "CERTIFICATE")
	if err != nil {
		return nil, fmt.Errorf("ca: load certificate %s: %w", path, err)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: load certificate %s: parse: %w", path, err)
	}
	if err := checkCA(cert, now); err != nil {
		return nil, fmt.Errorf("ca: load certificate %s: %w", path, err)
	}
	return cert, nil
}

// loadKey reads the private key in path: PKCS#8, SEC1 or PKCS#1, since
// openssl writes all three depending on the command and version.
func loadKey(path string) (crypto.Signer, error) {
	block, err := readBlock(path, pemPKCS8, pemSEC1, pemPKCS1)
	if err != nil {
		return nil, fmt.Errorf("ca: load key %s: %w", path, err)
	}
	key, err := parseKey(block)
	if err != nil {
		return nil, fmt.Errorf("ca: load key %s: parse: %w", path, err)
	}
	return key, nil
}

// readBlock returns the first PEM block of the file at path, which must be
// of one of types. EC PARAMETERS blocks before it are skipped: `openssl
// ecparam -genkey` writes one ahead of the key.
func readBlock(path string, types ...string) (*pem.Block, error) {
	data, err := os.ReadFile(path)
	err = withoutPath(err)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", ErrNoCA, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		switch {
		case block == nil:
			return nil, fmt.Errorf("no PEM block of type %s", strings.Join(types, ", "))
		case block.Type == "EC PARAMETERS":
			continue
		case !slices.Contains(types, block.Type):
			return nil, fmt.Errorf("PEM block is %q, want %s", block.Type, strings.Join(types, ", "))
		}
		return block, nil
	}
}

// withoutPath drops the path from a file error, which our errors name
// already, and keeps its cause (fs.ErrNotExist stays detectable).
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parseKey parses a private key block of a type readBlock accepted.
func parseKey(block *pem.Block) (crypto.Signer, error) {
	var key any
	var err error
	switch block.Type {
	case pemSEC1:
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case pemPKCS1:
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign", key)
	}
	return signer, nil
}

// publicKeyEqual reports whether a and b are the same public key. Every
// public key type of the standard library has an Equal method.
func publicKeyEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// checkCA returns why cert cannot sign leaves at now, or nil. Clients
// reject leaves from a certificate that is not a CA (RFC 5280 §4.2.1.9),
// or whose key usage lacks keyCertSign (§4.2.1.3), or outside its validity.
func checkCA(cert *x509.Certificate, now time.Time) error {
	switch {
	case !cert.BasicConstraintsValid || !cert.IsCA:
		return errors.New("not a CA certificate (basic constraints lack CA:TRUE)")
	case cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0:
		return errors.New("not a CA certificate (key usage lacks certificate signing)")
	case now.Before(cert.NotBefore):
		return fmt.Errorf("not yet valid: not before %s, now %s", cert.NotBefore.UTC(), now.UTC())
	case now.After(cert.NotAfter):
		return fmt.Errorf("expired: not after %s, now %s", cert.NotAfter.UTC(), now.UTC())
	}
	return nil
}
