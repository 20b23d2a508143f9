package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// initTime is the fixed time tests create CAs at.
var initTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// readCert parses the first PEM block of path as a certificate.
func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s: no CERTIFICATE block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// checkMode fails t unless path has exactly the permission bits want.
func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("mode of %s = %v, want %v", filepath.Base(path), got, want)
	}
}

func TestDefaultDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", home)
	got, err := DefaultDir()
	if want := filepath.Join(home, "resumeproxy"); got != want || err != nil {
		t.Errorf("DefaultDir() = %q, %v, want %q, nil", got, err, want)
	}
}

func TestInitFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "ca")
	certPath, keyPath, err := Init(dir, initTime)
	if err != nil {
		t.Fatalf("Init(%s) = %v", dir, err)
	}
	if want := filepath.Join(dir, CertFile); certPath != want {
		t.Errorf("Init certPath = %s, want %s", certPath, want)
	}
	if want := filepath.Join(dir, KeyFile); keyPath != want {
		t.Errorf("Init keyPath = %s, want %s", keyPath, want)
	}
	checkMode(t, dir, 0o700)
	checkMode(t, certPath, 0o644)
	checkMode(t, keyPath, 0o600)
	keyPEM, _ := os.ReadFile(keyPath)
	if block, _ := pem.Decode(keyPEM); block == nil || block.Type != "PRIVATE KEY" {
		t.Errorf("key file does not start with a PKCS#8 PRIVATE KEY block")
	}
}

func TestInitCertificate(t *testing.T) {
	certPath, _, err := Init(t.TempDir(), initTime)
	if err != nil {
		t.Fatal(err)
	}
	c := readCert(t, certPath)
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("IsCA, BasicConstraintsValid, MaxPathLen, MaxPathLenZero = %v, %v, %d, %v, want true, true, 0, true",
			c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	wantUsage := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	if c.KeyUsage != wantUsage {
		t.Errorf("KeyUsage = %b, want %b", c.KeyUsage, wantUsage)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("PublicKey = %T, want a P-256 *ecdsa.PublicKey", c.PublicKey)
	}
	if want := initTime.Add(-time.Hour); !c.NotBefore.Equal(want) {
		t.Errorf("NotBefore = %v, want %v", c.NotBefore, want)
	}
	if want := initTime.AddDate(10, 0, 0); !c.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", c.NotAfter, want)
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("SerialNumber = %v, want positive, at most 128 bits", c.SerialNumber)
	}
	if cn := c.Subject.CommonName; !strings.Contains(cn, "resumeproxy") || !strings.Contains(cn, "2026-03-01") {
		t.Errorf("Subject CN = %q, want it to contain resumeproxy and 2026-03-01", cn)
	}
	if o := c.Subject.Organization; len(o) != 1 || o[0] != "resumeproxy" {
		t.Errorf("Subject O = %q, want [resumeproxy]", o)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CheckSignatureFrom(itself) = %v, want nil", err)
	}
}

func TestInitRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, err := Init(dir, initTime)
	if err != nil {
		t.Fatal(err)
	}
	certBefore, _ := os.ReadFile(certPath)
	keyBefore, _ := os.ReadFile(keyPath)
	_, _, err = Init(dir, initTime.Add(time.Hour))
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), dir) {
		t.Errorf("second Init = %v, want ErrExists naming %s", err, dir)
	}
	certAfter, _ := os.ReadFile(certPath)
	keyAfter, _ := os.ReadFile(keyPath)
	if !bytes.Equal(certBefore, certAfter) || !bytes.Equal(keyBefore, keyAfter) {
		t.Errorf("second Init changed the CA files")
	}
}

// TestInitRefusesEitherFile: a lone certificate or a lone key is someone's
// CA too; Init writes nothing next to it.
func TestInitRefusesEitherFile(t *testing.T) {
	for _, existing := range []string{CertFile, KeyFile} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, existing), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := Init(dir, initTime)
		if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), existing) {
			t.Errorf("Init with %s present = %v, want ErrExists naming it", existing, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("Init with %s present left %d files, want 1", existing, len(entries))
		}
	}
}

// TestWritePairRemovesKey: when the certificate cannot be written (here
// another Init won the race for it), the key written just before is
// removed and the other's certificate kept.
func TestWritePairRemovesKey(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	writeFile(t, certPath, []byte("theirs"))
	err := writePair(certPath, []byte("ours"), keyPath, []byte("key"))
	if !errors.Is(err, ErrExists) {
		t.Errorf("writePair over a certificate = %v, want ErrExists", err)
	}
	if _, err := os.Lstat(keyPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lstat(key) after writePair failed = %v, want not exist", err)
	}
	if got, _ := os.ReadFile(certPath); string(got) != "theirs" {
		t.Errorf("certificate after writePair failed = %q, want theirs", got)
	}
}

func TestInitDirIsFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Init(dir, initTime); err == nil || errors.Is(err, ErrExists) {
		t.Errorf("Init(a file) = %v, want an error other than ErrExists", err)
	}
}

func TestCACommonNameLength(t *testing.T) {
	tests := []struct {
		host string
		want string
	}{
		{"box", "resumeproxy interception CA (box, 2026-03-01)"},
		{strings.Repeat("h", 40), "resumeproxy interception CA (" + strings.Repeat("h", 22) + ", 2026-03-01)"},
	}
	for _, tt := range tests {
		got := caCommonName(tt.host, initTime)
		if got != tt.want || len(got) > maxCommonName {
			t.Errorf("caCommonName(%q) = %q, want %q (at most %d bytes)", tt.host, got, tt.want, maxCommonName)
		}
	}
}
