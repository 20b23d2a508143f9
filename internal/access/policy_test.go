package access

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestNewPolicy(t *testing.T) {
	hash, err := Hash([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]string{"alice": hash}
	lan := []string{"127.0.0.0/8", "192.168.1.0/24"}
	for _, tt := range []struct {
		name      string
		c         Config
		guard     bool
		withUsers bool
	}{
		{"default", Config{Allow: LoopbackCIDRs, ListenLoopback: true}, false, false},
		{"lan clients", Config{Allow: lan, ListenLoopback: true}, true, false},
		{"lan clients, private upstreams allowed", Config{Allow: lan, ListenLoopback: true, PrivateUpstreams: true}, false, false},
		{"listen on all interfaces", Config{Allow: LoopbackCIDRs}, true, false},
		{"users", Config{Allow: []string{"0.0.0.0/0"}, Users: users}, true, true},
		{"empty users map", Config{Allow: LoopbackCIDRs, Users: map[string]string{}, ListenLoopback: true}, false, false},
	} {
		p, err := NewPolicy(tt.c)
		if err != nil {
			t.Fatalf("NewPolicy(%s) = %v", tt.name, err)
		}
		if p.GuardUpstreams != tt.guard || (p.Users != nil) != tt.withUsers {
			t.Errorf("NewPolicy(%s): GuardUpstreams %v, users %v; want %v, %v", tt.name, p.GuardUpstreams, p.Users != nil, tt.guard, tt.withUsers)
		}
	}
	for _, c := range []Config{{Allow: []string{"bogus"}}, {Allow: LoopbackCIDRs, Users: map[string]string{"alice": "pw"}}} {
		if _, err := NewPolicy(c); err == nil || !strings.Contains(err.Error(), "access:") {
			t.Errorf("NewPolicy(%+v) = %v, want an error", c, err)
		}
	}
}
