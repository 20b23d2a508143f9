package ca

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"
)

func TestNormalizeName(t *testing.T) {
	tests := []struct {
		in   string
		want string // the key; "" when in must be refused
		ip   bool
	}{
		{"example.com", "example.com", false},
		{"Example.COM.", "example.com", false},
		{"a_b.example", "a_b.example", false},
		{"localhost", "localhost", false},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", false},
		{strings.Repeat("a", 63) + ".com", strings.Repeat("a", 63) + ".com", false},
		{strings.Repeat("a.", 126) + "a", strings.Repeat("a.", 126) + "a", false}, // 253 bytes
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1.", "127.0.0.1", true},
		{"::1", "::1", true},
		{"[::1]", "::1", true},
		{"[0:0::1]", "::1", true},
		{"2001:DB8::A", "2001:db8::a", true},
		{"[::ffff:192.0.2.1]", "192.0.2.1", true},
		{"fe80::1%eth0", "fe80::1", true},
		{"", "", false},
		{".", "", false},
		{"..", "", false},
		{"a..b", "", false},
		{".example.com", "", false},
		{"example.com..", "", false},
		{"*.example.com", "", false},
		{"example.com:443", "", false},
		{"[127.0.0.1]", "", false},
		{"[example.com]", "", false},
		{"[::1", "", false},
		{"exa mple.com", "", false},
		{"b\u00fccher.example", "", false},
		{"\u212a.example", "", false}, // KELVIN SIGN lower-cases to k
		{strings.Repeat("a", 64) + ".com", "", false},
		{strings.Repeat("a.", 126) + "ab", "", false}, // 254 bytes
	}
	for _, tt := range tests {
		got, err := normalizeName(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("normalizeName(%q) = %q, want an error", tt.in, got.key)
			}
			continue
		}
		if err != nil || got.key != tt.want || got.ip.IsValid() != tt.ip {
			t.Errorf("normalizeName(%q) = %q (IP %v), %v, want %q (IP %v)", tt.in, got.key, got.ip.IsValid(), err, tt.want, tt.ip)
		}
	}
}

// FuzzLeafName checks Get's name normalisation: no panic; Get accepts a
// name exactly when normalizeName does; an accepted name differs from its
// normal form only by ASCII case and a trailing dot (or brackets, a zone
// and IPv4 mapping for an IP), the normal form is a fixed point, and it is
// the leaf's one SAN, which Go's own verifier matches.
func FuzzLeafName(f *testing.F) {
	for _, seed := range []string{
		"example.com", "Example.COM.", "a_b.example", "[::1]", "127.0.0.1",
		"fe80::1%eth0", "[::ffff:192.0.2.1]", "", ".", "*.example.com",
		"example.com:443", "\u212a.example",
	} {
		f.Add(seed)
	}
	a := testAuthority(f, initTime.Add(-time.Hour), initTime.AddDate(1, 0, 0), nil)
	now := initTime
	l := fixedLeaves(a, 1, &now)
	f.Fuzz(func(t *testing.T, name string) {
		cert, err := l.Get(name)
		n, nerr := normalizeName(name)
		if (err == nil) != (nerr == nil) {
			t.Fatalf("Get(%q) = %v but normalizeName = %v", name, err, nerr)
		}
		if err != nil {
			return
		}
		if again, err := normalizeName(n.key); err != nil || again != n {
			t.Errorf("normalizeName(%q) = %+v, %v, want the fixed point %+v", n.key, again, err, n)
		}
		if n.ip.IsValid() {
			checkIPLeaf(t, cert, n)
		} else {
			checkDNSLeaf(t, cert, name, n)
		}
		if err := cert.Leaf.VerifyHostname(n.key); err != nil {
			t.Errorf("VerifyHostname(%q) = %v, want nil", n.key, err)
		}
	})
}

// checkIPLeaf fails t unless cert's only SAN is the IP n.
func checkIPLeaf(t *testing.T, cert *tls.Certificate, n serverName) {
	ips := cert.Leaf.IPAddresses
	if len(ips) != 1 || len(cert.Leaf.DNSNames) != 0 || ips[0].String() != n.key {
		t.Errorf("Get(%q) SANs = %v, %q, want the IP alone", n.key, ips, cert.Leaf.DNSNames)
	}
}

// checkDNSLeaf fails t unless cert's only SAN is the DNS name n, and n is
// name in ASCII lower case without a trailing dot.
func checkDNSLeaf(t *testing.T, cert *tls.Certificate, name string, n serverName) {
	dns := cert.Leaf.DNSNames
	if len(dns) != 1 || len(cert.Leaf.IPAddresses) != 0 || dns[0] != n.key {
		t.Errorf("Get(%q) SANs = %q, %v, want [%q] alone", name, dns, cert.Leaf.IPAddresses, n.key)
	}
	trimmed := strings.TrimSuffix(name, ".")
	if len(trimmed) != len(n.key) || !strings.EqualFold(trimmed, n.key) || strings.ToLower(n.key) != n.key {
		t.Errorf("normalizeName(%q) = %q, want it in lower case without a trailing dot", name, n.key)
	}
	for i := 0; i < len(n.key); i++ {
		if c := n.key[i]; c >= 0x80 {
			t.Errorf("normalizeName(%q) = %q, want ASCII", name, n.key)
			break
		}
	}
}
