// Package ca is the certificate authority resumeproxy uses to intercept
// HTTPS, and the cache of the leaf certificates it signs. It deals in
// crypto and files only: Init writes a new CA, Load reads and validates one
// at start, and Leaves issues a leaf per server name on demand.
package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names inside a CA directory.
const (
	CertFile = "ca.pem"     // certificate, PEM, 0644
	KeyFile  = "ca-key.pem" // private key, PKCS#8 PEM, 0600
)

var (
	// ErrExists is returned by Init when a CA file already exists: a CA
	// that clients trust is never overwritten, since replacing it would
	// break every client until they trust the new one.
	ErrExists = errors.New("CA already exists")
	// ErrNoCA is returned by Load when a CA file does not exist, so that a
	// caller can tell "create one first" from a broken CA.
	ErrNoCA = errors.New("no CA")
)

// caValidityYears is how long a new CA is valid: long, since every client has
// to trust it again when it changes.
const caValidityYears = 10

// clockSkew is how far back NotBefore is set, so that a client whose clock
// is a little behind ours still accepts a certificate made just now.
const clockSkew = time.Hour

// maxCommonName is ub-common-name (RFC 5280 Appendix A.1): some parsers
// reject a longer CN.
const maxCommonName = 64

// DefaultDir is the CA directory used when none is configured:
// "resumeproxy" under os.UserConfigDir() ($XDG_CONFIG_HOME or ~/.config),
// since a CA is configuration the user installs, not cache to be wiped.
func DefaultDir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("ca: default dir: %w", err)
	}
	return filepath.Join(dir, "resumeproxy"), nil
}

// Init writes a new CA into dir (created 0700 if missing) and returns the
// paths of its certificate and key. It refuses with ErrExists, wrapped with
// the path, if either file already exists, and never leaves half a CA: on a
// failure after the key is written it removes what it wrote. The CA is
// valid from an hour before now (clock skew) for 10 years.
func Init(dir string, now time.Time) (certPath, keyPath string, err error) {
	certPath, keyPath = filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("ca: init: %w", err)
	}
	if err := refuseExisting(certPath, keyPath); err != nil {
		return "", "", err
	}
	certPEM, keyPEM, err := newCA(now, hostname())
	if err != nil {
		return "", "", err
	}
	if err := writePair(certPath, certPEM, keyPath, keyPEM); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// writePair writes the key, then the certificate, each as a new file, and
// removes the key if the certificate cannot be written: no half CA is
// left. The key goes first since O_EXCL on it is what makes two racing
// Inits safe: the second fails before writing anything.
func writePair(certPath string, certPEM []byte, keyPath string, keyPEM []byte) error {
	if err := writeNew(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeNew(certPath, certPEM, 0o644); err != nil {
		return removeAfter(err, keyPath)
	}
	return nil
}

// removeAfter removes path, which a failing Init wrote, and returns err,
// joined with the removal's own failure if any.
func removeAfter(err error, path string) error {
	if rmErr := os.Remove(path); rmErr != nil {
		return errors.Join(err, fmt.Errorf("ca: init: remove %s: %w", path, rmErr))
	}
	return err
}

// refuseExisting returns ErrExists, wrapped with the path, for the first
// of paths that exists (as anything, a dangling link included).
func refuseExisting(paths ...string) error {
	for _, p := range paths {
		_, err := os.Lstat(p)
		if err == nil {
			return fmt.Errorf("ca: init: %s: %w", p, ErrExists)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("ca: init: %w", err)
		}
	}
	return nil
}

// writeNew creates path, which must not exist, with exactly mode (whatever
// the umask), and writes data to it durably. On failure it removes the
// file if it created it.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("ca: init: %s: %w", path, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("ca: init: %w", err)
	}
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Chmod(mode), f.Sync(), f.Close()); err != nil {
		return removeAfter(fmt.Errorf("ca: init: write %s: %w", path, err), path)
	}
	return nil
}

// hostname names this machine in the CA's subject, or says it is unknown.
func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown host"
	}
	return h
}

// newCA returns the PEM certificate and PKCS#8 PEM key of a new
// self-signed CA valid from now.
func newCA(now time.Time, host string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: init: generate key: %w", err)
	}
	tmpl, err := caTemplate(now, host)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: init: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: init: marshal key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// caTemplate is the certificate of a CA that signs leaves only
// (MaxPathLenZero: no intermediate under it can be trusted).
func caTemplate(now time.Time, host string) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("ca: init: %w", err)
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   caCommonName(host, now),
			Organization: []string{"resumeproxy"},
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.AddDate(caValidityYears, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}, nil
}

// caCommonName says what the CA is, where and when it was made, for a user
// who finds it in a trust store. The host name is cut to keep the name
// within maxCommonName.
func caCommonName(host string, now time.Time) string {
	const format = "resumeproxy interception CA (%s, %s)"
	date := now.UTC().Format(time.DateOnly)
	room := maxCommonName - len(fmt.Sprintf(format, "", date))
	if len(host) > room {
		host = strings.ToValidUTF8(host[:room], "")
	}
	return fmt.Sprintf(format, host, date)
}

// randomSerial returns a random positive 128-bit serial number: RFC 5280
// §4.1.2.2 wants it positive and unique per issuer, and randomness makes
// it unique without state.
func randomSerial() (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	serial := new(big.Int).SetBytes(b)
	if serial.Sign() == 0 {
		serial.SetInt64(1)
	}
	return serial, nil
}
