package access

import (
	"net/netip"
	"testing"
	"time"
)

func netipAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestThrottle: once per address per interval, at most max addresses.
func TestThrottle(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	th := NewThrottle(time.Minute, 2)
	steps := []struct {
		addr string
		at   time.Duration
		want bool
	}{
		{"10.0.0.1", 0, true},
		{"10.0.0.1", 30 * time.Second, false},
		{"10.0.0.2", 30 * time.Second, true},
		{"10.0.0.3", 40 * time.Second, false}, // two remembered, none expired: not logged
		{"10.0.0.1", time.Minute, true},
		{"10.0.0.3", 90 * time.Second, true}, // 10.0.0.2 expired
		{"10.0.0.2", 91 * time.Second, false},
		{"10.0.0.3", 100 * time.Second, false},
	}
	for _, s := range steps {
		if got := th.Allow(netipAddr(s.addr), t0.Add(s.at)); got != s.want {
			t.Errorf("Allow(%s, t0+%v) = %v, want %v", s.addr, s.at, got, s.want)
		}
		if n := len(th.last); n > 2 {
			t.Errorf("after Allow(%s, t0+%v): %d addresses remembered, want at most 2", s.addr, s.at, n)
		}
	}
}
