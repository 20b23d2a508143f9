package ca

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// DNS name limits (RFC 1035 §2.3.4).
const (
	maxNameLen  = 253 // without the trailing dot
	maxLabelLen = 63
)

// serverName is a normalised name a leaf is issued for: an IP address or a
// DNS name, never both.
type serverName struct {
	// key is the canonical text of the name: lower-case DNS name without a
	// trailing dot, or the IP address without zone, IPv4 unmapped. It keys
	// the cache and is the leaf's only SAN.
	key string
	// ip is the address when the name is an IP literal; invalid otherwise.
	ip netip.Addr
}

// normalizeName turns an SNI name or a host (an IPv6 literal may be
// bracketed) into a serverName, or says why it cannot be one.
func normalizeName(s string) (serverName, error) {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		return bracketedIP(s[1 : len(s)-1])
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return serverName{}, errors.New("empty name")
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return ipName(ip), nil
	}
	if err := checkDNSName(s); err != nil {
		return serverName{}, err
	}
	// Only after checkDNSName: ToLower maps some non-ASCII runes to ASCII
	// (U+212A KELVIN SIGN to k), which would let them through.
	return serverName{key: strings.ToLower(s)}, nil
}

// bracketedIP is the serverName of the inside of "[...]", which must be
// an IPv6 address (RFC 3986 §3.2.2).
func bracketedIP(s string) (serverName, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil || !ip.Is6() {
		return serverName{}, fmt.Errorf("brackets around %q, not an IPv6 address", s)
	}
	return ipName(ip), nil
}

// ipName is the serverName of ip. The zone is dropped since a certificate
// cannot hold one, and an IPv4-mapped address is unmapped since x509
// writes it as IPv4 anyway.
func ipName(ip netip.Addr) serverName {
	ip = ip.WithZone("").Unmap()
	return serverName{key: ip.String(), ip: ip}
}

// checkDNSName returns why s (no trailing dot) is not a host name, or nil.
// Like crypto/x509's verifier it allows '_', found outside the WebPKI, and
// no '*': a server name is never a wildcard.
func checkDNSName(s string) error {
	if len(s) > maxNameLen {
		return fmt.Errorf("name longer than %d bytes", maxNameLen)
	}
	for label := range strings.SplitSeq(s, ".") {
		if err := checkLabel(label); err != nil {
			return err
		}
	}
	return nil
}

// checkLabel returns why label is not a DNS label, or nil.
func checkLabel(label string) error {
	if label == "" {
		return errors.New("empty label")
	}
	if len(label) > maxLabelLen {
		return fmt.Errorf("label longer than %d bytes", maxLabelLen)
	}
	for i := 0; i < len(label); i++ {
		if !isHostByte(label[i]) {
			return fmt.Errorf("invalid byte %q", label[i])
		}
	}
	return nil
}

// isHostByte reports whether c may appear in a DNS label.
func isHostByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '-' || c == '_'
}
