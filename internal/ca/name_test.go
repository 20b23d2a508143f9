package ca

import (
	"strings"
	"testing"
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
