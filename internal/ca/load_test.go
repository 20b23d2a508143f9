package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestInitLoad(t *testing.T) {
	certPath, keyPath, err := Init(t.TempDir(), initTime)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Load(certPath, keyPath, initTime)
	if err != nil {
		t.Fatalf("Load(Init's files) = %v, want nil", err)
	}
	fileCert := readCert(t, certPath)
	if !a.Cert.Equal(fileCert) {
		t.Errorf("Load().Cert is not the certificate in %s", certPath)
	}
	if !publicKeyEqual(a.Key.Public(), fileCert.PublicKey) {
		t.Errorf("Load().Key does not match the certificate")
	}
	block, rest := pem.Decode(a.CertPEM)
	if block == nil || block.Type != "CERTIFICATE" || !bytes.Equal(block.Bytes, fileCert.Raw) || len(rest) != 0 {
		t.Errorf("Load().CertPEM = %q, want the certificate alone as PEM", a.CertPEM)
	}
}

// loadCase is one broken CA and the error Load must give for it.
type loadCase struct {
	name string
	// setup breaks the good CA whose files it is given.
	setup func(t *testing.T, certPath, keyPath string)
	now   time.Time
	// inKey is set when the error must name the key file, else the
	// certificate file.
	inKey  bool
	reason string
}

func TestLoadErrors(t *testing.T) {
	notCA := func(c *x509.Certificate) { c.IsCA, c.MaxPathLenZero = false, false }
	noCertSign := func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature }
	tests := []loadCase{
		{name: "missing certificate", setup: remove(false), reason: "no CA"},
		{name: "missing key", setup: remove(true), inKey: true, reason: "no CA"},
		{name: "certificate is a directory", setup: mkdirOver(false), reason: "read:"},
		{name: "garbage certificate", setup: overwrite(false, []byte("garbage")), reason: "no PEM block"},
		{name: "garbage key", setup: overwrite(true, []byte("garbage")), inKey: true, reason: "no PEM block"},
		{name: "key as certificate", setup: swap, reason: `PEM block is "PRIVATE KEY"`},
		{name: "unparsable certificate", setup: overwrite(false, pemOf("CERTIFICATE", "junk")), reason: "parse:"},
		{name: "unparsable key", setup: overwrite(true, pemOf(pemSEC1, "junk")), inKey: true, reason: "parse:"},
		{name: "key of another CA", setup: otherKey, inKey: true, reason: "does not match"},
		{name: "not a CA", setup: replaceCA(notCA), reason: "lack CA:TRUE"},
		{name: "no certificate signing", setup: replaceCA(noCertSign), reason: "lacks certificate signing"},
		{name: "expired", setup: replaceCA(nil), now: initTime.Add(3 * time.Hour), reason: "expired"},
		{name: "not yet valid", setup: replaceCA(nil), now: initTime.Add(-3 * time.Hour), reason: "not yet valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPath, keyPath, err := Init(t.TempDir(), initTime)
			if err != nil {
				t.Fatal(err)
			}
			tt.setup(t, certPath, keyPath)
			now := tt.now
			if now.IsZero() {
				now = initTime
			}
			file := certPath
			if tt.inKey {
				file = keyPath
			}
			a, err := Load(certPath, keyPath, now)
			if err == nil || !strings.Contains(err.Error(), tt.reason) || !strings.Contains(err.Error(), file) {
				t.Errorf("Load() = %v, %v, want an error naming %s and %q", a, err, file, tt.reason)
			}
			if got, want := errors.Is(err, ErrNoCA), tt.reason == "no CA"; got != want {
				t.Errorf("errors.Is(Load(), ErrNoCA) = %v, want %v", got, want)
			}
		})
	}
}

// pick returns keyPath when key is set, else certPath.
func pick(key bool, certPath, keyPath string) string {
	if key {
		return keyPath
	}
	return certPath
}

// remove removes the key file, or the certificate file.
func remove(key bool) func(*testing.T, string, string) {
	return func(t *testing.T, certPath, keyPath string) {
		if err := os.Remove(pick(key, certPath, keyPath)); err != nil {
			t.Fatal(err)
		}
	}
}

// mkdirOver replaces the key file, or the certificate file, by a directory.
func mkdirOver(key bool) func(*testing.T, string, string) {
	return func(t *testing.T, certPath, keyPath string) {
		remove(key)(t, certPath, keyPath)
		if err := os.Mkdir(pick(key, certPath, keyPath), 0o700); err != nil {
			t.Fatal(err)
		}
	}
}

// overwrite replaces the key file, or the certificate file, by data.
func overwrite(key bool, data []byte) func(*testing.T, string, string) {
	return func(t *testing.T, certPath, keyPath string) {
		writeFile(t, pick(key, certPath, keyPath), data)
	}
}

// pemOf is a PEM block of type typ holding body.
func pemOf(typ, body string) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: []byte(body)})
}

// swap puts the key where the certificate belongs.
func swap(t *testing.T, certPath, keyPath string) {
	data, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, certPath, data)
}

// otherKey replaces the key by the key of another CA.
func otherKey(t *testing.T, certPath, keyPath string) {
	other := testAuthority(t, initTime, initTime.Add(time.Hour), nil)
	_, otherKeyPath := writeAuthority(t, t.TempDir(), other)
	data, err := os.ReadFile(otherKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, keyPath, data)
}

// replaceCA replaces the CA by one valid for [initTime-1h, initTime+1h]
// with edit applied.
func replaceCA(edit func(*x509.Certificate)) func(*testing.T, string, string) {
	return func(t *testing.T, certPath, keyPath string) {
		a := testAuthority(t, initTime.Add(-time.Hour), initTime.Add(time.Hour), edit)
		dir := filepath.Dir(certPath)
		writeAuthority(t, dir, a)
	}
}

// TestLoadKeyFormats: openssl writes CA keys as PKCS#8, SEC1 (with an EC
// PARAMETERS block ahead from `openssl ecparam -genkey`) or PKCS#1 for
// RSA; Load accepts all of them.
func TestLoadKeyFormats(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecParams := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
	tests := []struct {
		name    string
		ca      *Authority
		keyFile []byte
	}{
		{"SEC1", testAuthorityKey(t, ecKey, initTime, initTime.Add(time.Hour), nil), pem.EncodeToMemory(&pem.Block{Type: pemSEC1, Bytes: sec1})},
		{"EC PARAMETERS then SEC1", testAuthorityKey(t, ecKey, initTime, initTime.Add(time.Hour), nil), append(ecParams, pem.EncodeToMemory(&pem.Block{Type: pemSEC1, Bytes: sec1})...)},
		{"PKCS#1", testAuthorityKey(t, rsaKey, initTime, initTime.Add(time.Hour), nil), pem.EncodeToMemory(&pem.Block{Type: pemPKCS1, Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})},
	}
	for _, tt := range tests {
		certPath, keyPath := writeAuthority(t, t.TempDir(), tt.ca)
		writeFile(t, keyPath, tt.keyFile)
		if _, err := Load(certPath, keyPath, initTime); err != nil {
			t.Errorf("Load(%s key) = %v, want nil", tt.name, err)
		}
	}
}
