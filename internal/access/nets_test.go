package access

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestNetsContains(t *testing.T) {
	tests := []struct {
		cidrs []string
		addr  string
		want  bool
	}{
		{LoopbackCIDRs, "127.0.0.1", true},
		{LoopbackCIDRs, "127.255.0.9", true},
		{LoopbackCIDRs, "::1", true},
		{LoopbackCIDRs, "::ffff:127.0.0.1", true}, // an IPv4 client of a dual-stack listener
		{LoopbackCIDRs, "192.168.1.2", false},
		{LoopbackCIDRs, "::2", false},
		{[]string{"192.168.1.0/24"}, "192.168.1.77", true},
		{[]string{"192.168.1.0/24"}, "192.168.2.1", false},
		{[]string{"10.0.0.7"}, "10.0.0.7", true},
		{[]string{"10.0.0.7"}, "10.0.0.8", false},
		{[]string{"0.0.0.0/0"}, "203.0.113.9", true},
		{[]string{"0.0.0.0/0"}, "2001:db8::1", false},
		{[]string{"::/0"}, "2001:db8::1", true},
		{[]string{"::ffff:10.0.0.0/104"}, "10.1.2.3", true},
		{[]string{"fe80::/10"}, "fe80::1%eth0", true},
		{nil, "127.0.0.1", false},
	}
	for _, tt := range tests {
		n, err := ParseNets(tt.cidrs)
		if err != nil {
			t.Fatalf("ParseNets(%q) = %v", tt.cidrs, err)
		}
		if got := n.Contains(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("ParseNets(%q).Contains(%s) = %v, want %v", tt.cidrs, tt.addr, got, tt.want)
		}
	}
}

func TestParseNetsErrors(t *testing.T) {
	for _, tt := range []struct{ cidr, want string }{
		{"", "not an IP address"},
		{"localhost", "not an IP address"},
		{"192.168.1.0/33", "not a CIDR"},
		{"192.168.1.1/24", "did you mean 192.168.1.0/24"},
		{"fe80::1%eth0", "not an IP address"},
	} {
		_, err := ParseNets([]string{tt.cidr})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseNets(%q) = %v, want an error containing %q", tt.cidr, err, tt.want)
		}
	}
}

func TestBeyondLoopback(t *testing.T) {
	for _, tt := range []struct {
		cidrs []string
		want  bool
	}{
		{nil, false},
		{LoopbackCIDRs, false},
		{[]string{"127.0.0.1"}, false},
		{[]string{"126.0.0.0/7"}, true},
		{[]string{"::1", "10.0.0.0/8"}, true},
		{[]string{"0.0.0.0/0"}, true},
		{[]string{"::/0"}, true},
		{[]string{"::/127"}, true},
	} {
		n, err := ParseNets(tt.cidrs)
		if err != nil {
			t.Fatalf("ParseNets(%q) = %v", tt.cidrs, err)
		}
		if got := n.BeyondLoopback(); got != tt.want {
			t.Errorf("ParseNets(%q).BeyondLoopback() = %v, want %v", tt.cidrs, got, tt.want)
		}
	}
}

func TestIsLocal(t *testing.T) {
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1", true},
		{"127.1.2.3", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"::", true},
		{"169.254.169.254", true}, // cloud metadata
		{"fe80::1", true},
		{"224.0.0.1", true},
		{"ff02::1", true},
		{"10.0.0.1", false}, // private networks are other machines: allowed
		{"192.168.1.1", false},
		{"93.184.216.34", false},
		{"2001:db8::1", false},
	} {
		if got := IsLocal(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("IsLocal(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestPolicyUpstream(t *testing.T) {
	lo, pub := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("93.184.216.34")
	for _, tt := range []struct {
		guard bool
		addr  netip.Addr
		want  error
	}{
		{false, lo, nil},
		{true, lo, ErrLocalUpstream},
		{true, pub, nil},
	} {
		p := &Policy{GuardUpstreams: tt.guard}
		if got := p.Upstream(tt.addr); got != tt.want {
			t.Errorf("Policy{GuardUpstreams: %v}.Upstream(%s) = %v, want %v", tt.guard, tt.addr, got, tt.want)
		}
	}
}

func TestSelfAddrs(t *testing.T) {
	local := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.168.1.5"),
		netip.MustParseAddr("::1"), netip.MustParseAddr("fe80::1%eth0")}
	for _, tt := range []struct {
		bound string
		want  []string
	}{
		{"127.0.0.1:3128", []string{"127.0.0.1:3128"}},
		{"[::ffff:127.0.0.1]:3128", []string{"127.0.0.1:3128"}},
		{"0.0.0.0:3128", []string{"0.0.0.0:3128", "127.0.0.1:3128", "192.168.1.5:3128"}},
		{"[::]:3128", []string{"[::]:3128", "127.0.0.1:3128", "192.168.1.5:3128", "[::1]:3128", "[fe80::1]:3128"}},
	} {
		var got []string
		for _, ap := range SelfAddrs(netip.MustParseAddrPort(tt.bound), local) {
			got = append(got, ap.String())
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("SelfAddrs(%s, %v) = %v, want %v", tt.bound, local, got, tt.want)
		}
	}
}

func TestIsSelf(t *testing.T) {
	self := SelfAddrs(netip.MustParseAddrPort("127.0.0.1:3128"), nil)
	for _, tt := range []struct {
		ap   string
		want bool
	}{
		{"127.0.0.1:3128", true},
		{"[::ffff:127.0.0.1]:3128", true},
		{"0.0.0.0:3128", true},
		{"[::]:3128", true},
		{"127.0.0.1:3129", false},
		{"127.0.0.2:3128", false},
		{"[::1]:3128", false},
	} {
		if got := IsSelf(self, netip.MustParseAddrPort(tt.ap)); got != tt.want {
			t.Errorf("IsSelf(127.0.0.1:3128, %s) = %v, want %v", tt.ap, got, tt.want)
		}
	}
}
