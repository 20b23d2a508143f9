package access

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// testUsers has alice (password "wonderland") and bob ("builder") at
// bcrypt's lowest cost, so that tests stay fast.
func testUsers(t *testing.T) *Users {
	t.Helper()
	hashes := map[string]string{}
	for name, pw := range map[string]string{"alice": "wonderland", "bob": "builder"} {
		h, err := Hash([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("Hash(%q) = %v", pw, err)
		}
		hashes[name] = h
	}
	u, err := NewUsers(hashes)
	if err != nil {
		t.Fatalf("NewUsers = %v", err)
	}
	return u
}

func TestUsersCheck(t *testing.T) {
	u := testUsers(t)
	tests := []struct {
		auth string
		user string
		err  error
	}{
		{FormatBasic("alice", "wonderland"), "alice", nil},
		{FormatBasic("bob", "builder"), "bob", nil},
		{FormatBasic("alice", "wonderland"), "alice", nil}, // remembered this time
		{FormatBasic("alice", "builder"), "", ErrBadCredentials},
		{FormatBasic("Alice", "wonderland"), "", ErrBadCredentials},
		{FormatBasic("carol", "wonderland"), "", ErrBadCredentials},
		{FormatBasic("alice", "wonderland\x00"), "", ErrNoCredentials},
		{FormatBasic("alice", "wonderland"+strings.Repeat("x", 70)), "", ErrBadCredentials},
		{"", "", ErrNoCredentials},
		{"Bearer abc", "", ErrNoCredentials},
	}
	for _, tt := range tests {
		user, err := u.Check(context.Background(), tt.auth)
		if user != tt.user || !errors.Is(err, tt.err) {
			t.Errorf("Check(%q) = %q, %v; want %q, %v", tt.auth, user, err, tt.user, tt.err)
		}
	}
}

// TestUsersCheckWaitsForSlot: with every comparison slot taken, Check waits
// and gives up when its context is done.
func TestUsersCheckWaitsForSlot(t *testing.T) {
	u := testUsers(t)
	for range cap(u.sem) {
		u.sem <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := u.Check(ctx, FormatBasic("alice", "wonderland")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Check with no free slot = %v, want context.DeadlineExceeded", err)
	}
}

// TestUsersRememberedBounded: the remembered credentials never exceed
// maxVerified.
func TestUsersRememberedBounded(t *testing.T) {
	u := testUsers(t)
	for i := range maxVerified + 10 {
		u.remember(u.mac(FormatBasic("alice", strings.Repeat("x", i))), "alice")
	}
	if n := len(u.verified); n > maxVerified {
		t.Errorf("after %d remembers, len(verified) = %d, want at most %d", maxVerified+10, n, maxVerified)
	}
}

func TestNewUsersErrors(t *testing.T) {
	good, err := Hash([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		users map[string]string
		want  string
	}{
		{map[string]string{}, "no users"},
		{map[string]string{"a:b": good}, "a:b"},
		{map[string]string{"": good}, "non-empty"},
		{map[string]string{"tab\tname": good}, "control"},
		{map[string]string{"alice": "wonderland"}, `user "alice": not a bcrypt hash`},
	} {
		if _, err := NewUsers(tt.users); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewUsers(%q) = %v, want an error containing %q", tt.users, err, tt.want)
		}
	}
}

func TestHash(t *testing.T) {
	for _, tt := range []struct {
		pw   string
		cost int
		want string // "" for success
	}{
		{"s3cret", bcrypt.MinCost, ""},
		{"", bcrypt.MinCost, "empty"},
		{strings.Repeat("x", 73), bcrypt.MinCost, "at most 72"},
		{"a\nb", bcrypt.MinCost, "control"},
		{"s3cret", 3, "cost 3"},
		{"s3cret", 32, "cost 32"},
	} {
		h, err := Hash([]byte(tt.pw), tt.cost)
		if tt.want != "" {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Hash(%q, %d) = %q, %v; want an error containing %q", tt.pw, tt.cost, h, err, tt.want)
			}
			continue
		}
		if err != nil || bcrypt.CompareHashAndPassword([]byte(h), []byte(tt.pw)) != nil {
			t.Errorf("Hash(%q, %d) = %q, %v; want a bcrypt hash of the password", tt.pw, tt.cost, h, err)
		}
	}
}

func TestPolicyAuthenticate(t *testing.T) {
	open := &Policy{}
	if user, err := open.Authenticate(context.Background(), ""); user != "" || err != nil {
		t.Errorf("Policy{}.Authenticate(\"\") = %q, %v; want \"\", nil (no users: no credentials asked)", user, err)
	}
	p := &Policy{Users: testUsers(t)}
	if user, err := p.Authenticate(context.Background(), ""); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("Authenticate(\"\") with users = %q, %v; want ErrNoCredentials", user, err)
	}
	if user, err := p.Authenticate(context.Background(), FormatBasic("bob", "builder")); user != "bob" || err != nil {
		t.Errorf("Authenticate(bob) = %q, %v; want bob, nil", user, err)
	}
}

func TestLoopbackPolicy(t *testing.T) {
	p := Loopback()
	if len(p.Allow.prefixes) != len(LoopbackCIDRs) {
		t.Fatalf("Loopback().Allow = %v, want %v", p.Allow, LoopbackCIDRs)
	}
	for addr, want := range map[string]error{"127.0.0.1": nil, "::1": nil, "10.0.0.1": ErrNotAllowed} {
		if got := p.Allowed(netipAddr(addr)); got != want {
			t.Errorf("Loopback().Allowed(%s) = %v, want %v", addr, got, want)
		}
	}
}
