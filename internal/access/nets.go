// Package access decides who may use the proxy and where it may connect:
// client networks (allow), proxy credentials (RFC 7617 Basic, bcrypt
// hashes), which upstream addresses are local to the proxy's machine, and
// the proxy's own addresses. It holds no sockets: the proxy asks it about
// values.
package access

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Nets is a list of client networks. The zero value contains nothing.
type Nets struct {
	prefixes []netip.Prefix // masked, IPv4 ones as 4-byte prefixes
}

// LoopbackCIDRs are the networks the proxy serves by default: this machine
// only.
var LoopbackCIDRs = []string{"127.0.0.0/8", "::1/128"}

// ParseNets parses CIDRs ("192.168.1.0/24", "::1/128") or single addresses
// ("10.0.0.7": a /32 or /128). A CIDR whose address has host bits set is an
// error: "192.168.1.1/24" is most often a typo for a network.
func ParseNets(cidrs []string) (Nets, error) {
	var n Nets
	for _, s := range cidrs {
		p, err := parsePrefix(strings.TrimSpace(s))
		if err != nil {
			return Nets{}, err
		}
		n.prefixes = append(n.prefixes, p)
	}
	return n, nil
}

// parsePrefix parses one entry of ParseNets.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("access: %q is not an IP address or CIDR", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("access: %q is not a CIDR: %w", s, err)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("access: %q has bits set past /%d: did you mean %s?", s, p.Bits(), p.Masked())
	}
	if p.Addr().Is4In6() { // masked, so at least /96: ::ffff:10.0.0.0/104 is 10.0.0.0/8
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p, nil
}

// Contains reports whether a is in one of the networks. An IPv4-mapped IPv6
// address (::ffff:10.0.0.1, as a dual-stack listener sees IPv4 clients) is
// its IPv4 address.
func (n Nets) Contains(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range n.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// BeyondLoopback reports whether a network reaches past loopback: the
// proxy then serves other machines.
func (n Nets) BeyondLoopback() bool {
	for _, p := range n.prefixes {
		loop := loopbackNet(p.Addr())
		if p.Bits() < loop.Bits() || !loop.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// loopbackNet is the loopback network of a's family.
func loopbackNet(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return netip.MustParsePrefix("127.0.0.0/8")
	}
	return netip.MustParsePrefix("::1/128")
}

// String lists the networks as CIDRs.
func (n Nets) String() string {
	s := make([]string, len(n.prefixes))
	for i, p := range n.prefixes {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// ErrLocalUpstream: an upstream address on the proxy's own machine or link
// (loopback, link-local, unspecified, multicast), refused when the proxy
// serves other machines: otherwise any client could reach services that
// listen only locally (an admin port, a cloud metadata endpoint at
// 169.254.169.254).
var ErrLocalUpstream = errors.New("access: upstream address is local to the proxy (allow_private_upstreams)")

// IsLocal reports whether an upstream address is local to the proxy's
// machine or link: loopback, link-local (unicast or multicast), unspecified
// or "this network" (0.0.0.0/8, which Linux connects to itself), or
// multicast.
func IsLocal(a netip.Addr) bool {
	a = a.Unmap()
	switch {
	case a.IsLoopback(), a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast(),
		a.IsUnspecified(), a.IsMulticast():
		return true
	}
	return a.Is4() && a.As4()[0] == 0
}

// SelfAddrs returns the addresses that reach a listener bound to bound:
// bound itself, and when it is the unspecified address (0.0.0.0 or [::]:
// every interface) each local address of its family with its port
// ([::] also takes IPv4 ones, as Linux's dual-stack sockets do). A request
// or a dial to one of them would come back to the proxy: a loop.
func SelfAddrs(bound netip.AddrPort, local []netip.Addr) []netip.AddrPort {
	b := netip.AddrPortFrom(bound.Addr().Unmap().WithZone(""), bound.Port())
	self := []netip.AddrPort{b}
	if !b.Addr().IsUnspecified() {
		return self
	}
	for _, a := range local {
		a = a.Unmap().WithZone("")
		if a.Is4() || b.Addr().Is6() {
			self = append(self, netip.AddrPortFrom(a, b.Port()))
		}
	}
	return self
}

// IsSelf reports whether ap is one of self (as SelfAddrs returns them). An
// unspecified address with the port of one of them is self too: a dial to
// 0.0.0.0 or [::] reaches this machine's loopback.
func IsSelf(self []netip.AddrPort, ap netip.AddrPort) bool {
	a := ap.Addr().Unmap().WithZone("")
	for _, s := range self {
		if s.Port() == ap.Port() && (s.Addr() == a || a.IsUnspecified()) {
			return true
		}
	}
	return false
}
