package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/resumeproxy/resumeproxy/internal/ca"
	"github.com/resumeproxy/resumeproxy/internal/config"
	"github.com/resumeproxy/resumeproxy/internal/hostglob"
	"github.com/resumeproxy/resumeproxy/proxy"
)

// loadInterception loads and checks the CA when interception is on, so a
// missing, mismatched, expired or non-CA certificate stops the start with
// exit status 2, never the first request. Nil when interception is off.
func loadInterception(m config.MITM, now time.Time) (*proxy.Interception, error) {
	if !m.Enabled {
		return nil, nil
	}
	certPath, keyPath := m.CACert, m.CAKey
	if certPath == "" {
		dir, err := ca.DefaultDir()
		if err != nil {
			return nil, usageError{fmt.Errorf("--mitm: %w", err)}
		}
		certPath, keyPath = filepath.Join(dir, ca.CertFile), filepath.Join(dir, ca.KeyFile)
		if _, err := os.Stat(certPath); errors.Is(err, fs.ErrNotExist) {
			return nil, usageError{fmt.Errorf("--mitm: no CA at %s: create one with `resumeproxy ca init` (or give --ca-cert and --ca-key)", certPath)}
		}
	}
	auth, err := ca.Load(certPath, keyPath, now)
	if err != nil {
		return nil, usageError{fmt.Errorf("--mitm: %w", err)}
	}
	hosts, err := hostglob.Parse(m.Hosts)
	if err != nil {
		return nil, usageError{fmt.Errorf("mitm.hosts: %w", err)} // Validate saw it first
	}
	bypass, err := hostglob.Parse(m.Bypass)
	if err != nil {
		return nil, usageError{fmt.Errorf("mitm.bypass: %w", err)}
	}
	return &proxy.Interception{Certs: ca.NewLeaves(auth, m.LeafCache), CAPEM: auth.CertPEM, Hosts: hosts, Bypass: bypass}, nil
}

// runCA runs "resumeproxy ca init|cert [--dir DIR]".
func runCA(args []string, stdout, stderr io.Writer) error {
	usage := usageError{errors.New("usage: resumeproxy ca init [--dir DIR] | ca cert [--dir DIR]")}
	if len(args) == 0 {
		return usage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fmt.Fprintln(stdout, usage.Error())
		return nil
	}
	fset := flag.NewFlagSet("resumeproxy ca "+args[0], flag.ContinueOnError)
	fset.SetOutput(stderr)
	dir := fset.String("dir", "", "CA `directory` (default: resumeproxy under the user config dir, ~/.config/resumeproxy)")
	if err := fset.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fset.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fset.Arg(0))}
	}
	if *dir == "" {
		d, err := ca.DefaultDir()
		if err != nil {
			return fmt.Errorf("ca: %w", err)
		}
		*dir = d
	}
	switch args[0] {
	case "init":
		return caInit(*dir, stdout)
	case "cert":
		return caCert(*dir, stdout)
	}
	return usage
}

// caInit writes a new CA and tells the operator the two next steps.
func caInit(dir string, stdout io.Writer) error {
	certPath, keyPath, err := ca.Init(dir, time.Now())
	if errors.Is(err, ca.ErrExists) {
		return usageError{fmt.Errorf("%w; it is kept (remove both files first to replace it, and re-trust the new one everywhere)", err)}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `Created an interception CA for resumeproxy:
  certificate: %[1]s
  private key: %[2]s (mode 0600: whoever reads it can impersonate any site to clients that trust the CA)

Next:
  1. Make clients trust the certificate (README, "HTTPS"). On Debian or Ubuntu:
       sudo cp %[1]s /usr/local/share/ca-certificates/resumeproxy.crt && sudo update-ca-certificates
     From another machine: curl -o resumeproxy-ca.pem http://<proxy address>/ca.pem
  2. Start the proxy with interception on:
       resumeproxy --mitm
`, certPath, keyPath)
	return nil
}

// caCert prints the CA certificate, for piping into a trust store.
func caCert(dir string, stdout io.Writer) error {
	b, err := os.ReadFile(filepath.Join(dir, ca.CertFile))
	if errors.Is(err, fs.ErrNotExist) {
		return usageError{fmt.Errorf("no CA in %s: create one with `resumeproxy ca init`", dir)}
	}
	if err != nil {
		return fmt.Errorf("ca cert: %w", err)
	}
	_, err = stdout.Write(b)
	return err
}
