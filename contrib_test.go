package main

import (
	"bufio"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
)

// unitDirectives reads the [Service] section of a systemd unit: every
// directive's values, in order (a directive may repeat).
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is no directive", path, line)
			}
			d[k] = append(d[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestServiceUnitHardening: contrib/resumeproxy.service keeps the
// hardening README promises (issue 11).
func TestServiceUnitHardening(t *testing.T) {
	d := unitDirectives(t, "contrib/resumeproxy.service")
	for k, want := range map[string]string{
		"DynamicUser":     "yes",
		"CacheDirectory":  "resumeproxy",
		"StateDirectory":  "resumeproxy",
		"ProtectSystem":   "strict",
		"ProtectHome":     "yes",
		"NoNewPrivileges": "yes",
		"PrivateTmp":      "yes",
		// Configuration mistakes exit 2: restarting would loop.
		"RestartPreventExitStatus": "2",
	} {
		if !slices.Contains(d[k], want) {
			t.Errorf("resumeproxy.service: %s = %q, want %s", k, d[k], want)
		}
	}
	if f := strings.Fields(strings.Join(d["RestrictAddressFamilies"], " ")); !slices.Contains(f, "AF_INET") || !slices.Contains(f, "AF_INET6") {
		t.Errorf("resumeproxy.service: RestrictAddressFamilies = %q, want AF_INET and AF_INET6 among them", f)
	}
}

// TestServiceUnitExecStart: every flag of ExecStart is one of the proxy's,
// the cache goes to CacheDirectory, and the command line parses and
// validates with systemd's variables set.
func TestServiceUnitExecStart(t *testing.T) {
	withUserCacheDir(t)
	d := unitDirectives(t, "contrib/resumeproxy.service")
	if len(d["ExecStart"]) != 1 {
		t.Fatalf("resumeproxy.service: ExecStart = %q, want one", d["ExecStart"])
	}
	args := strings.Fields(d["ExecStart"][0])
	if !strings.HasSuffix(args[0], "/resumeproxy") {
		t.Errorf("ExecStart runs %s, want resumeproxy", args[0])
	}
	fs, _ := newServeFlagSet(io.Discard)
	for _, a := range args[1:] {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && fs.Lookup(name) == nil {
			t.Errorf("ExecStart uses %s, which is no flag of resumeproxy", a)
		}
	}
	if i := slices.Index(args, "--cache-dir"); i < 0 || i+1 >= len(args) || args[i+1] != "${CACHE_DIRECTORY}" {
		t.Errorf("ExecStart = %q, want --cache-dir ${CACHE_DIRECTORY}", args)
	}
	cacheDir, stateDir := t.TempDir(), t.TempDir()
	expanded := os.Expand(strings.Join(args[1:], " "), func(v string) string {
		return map[string]string{"CACHE_DIRECTORY": cacheDir, "STATE_DIRECTORY": stateDir}[v] // RESUMEPROXY_FLAGS: unset
	})
	cfg, err := parseFlags(strings.Fields(expanded), io.Discard)
	if err != nil {
		t.Fatalf("parseFlags(ExecStart's %q) = %v, want nil", expanded, err)
	}
	if cfg.CacheDir != cacheDir || cfg.MITM.CACert != stateDir+"/ca.pem" || cfg.MITM.CAKey != stateDir+"/ca-key.pem" {
		t.Errorf("ExecStart gives cache_dir %s, mitm.ca_cert %s, mitm.ca_key %s, want %s and the CA in %s",
			cfg.CacheDir, cfg.MITM.CACert, cfg.MITM.CAKey, cacheDir, stateDir)
	}
}
