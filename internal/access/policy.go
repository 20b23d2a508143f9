package access

import (
	"context"
	"errors"
	"net/netip"
)

// ErrNotAllowed: the client's address is outside Policy.Allow.
var ErrNotAllowed = errors.New("access: client address not in allow")

// Policy is who may use the proxy and which upstreams it refuses. A client
// must be in Allow and, when Users is set, authenticate as one of them.
type Policy struct {
	// Allow are the networks clients may connect from. Empty: none.
	Allow Nets
	// Users, when not nil, are the accounts proxy requests and CONNECTs
	// must authenticate as (Proxy-Authorization: Basic). Nil: no
	// credentials asked.
	Users *Users
	// GuardUpstreams refuses upstream addresses that are local to the
	// proxy (IsLocal): set when the proxy serves other machines, unless the
	// operator allows private upstreams.
	GuardUpstreams bool
}

// Loopback is the default policy: clients on this machine only, no
// credentials, no upstream refused.
func Loopback() *Policy {
	n, _ := ParseNets(LoopbackCIDRs) // constant, checked by the tests
	return &Policy{Allow: n}
}

// Allowed returns ErrNotAllowed when a is outside Allow.
func (p *Policy) Allowed(a netip.Addr) error {
	if !p.Allow.Contains(a) {
		return ErrNotAllowed
	}
	return nil
}

// Authenticate returns the user the Proxy-Authorization value auth names
// ("" when no credentials are configured), or ErrNoCredentials or
// ErrBadCredentials.
func (p *Policy) Authenticate(ctx context.Context, auth string) (string, error) {
	if p.Users == nil {
		return "", nil
	}
	return p.Users.Check(ctx, auth)
}

// Upstream returns ErrLocalUpstream when GuardUpstreams is set and a is
// local to the proxy.
func (p *Policy) Upstream(a netip.Addr) error {
	if p.GuardUpstreams && IsLocal(a) {
		return ErrLocalUpstream
	}
	return nil
}

// Config holds the configuration keys NewPolicy builds a Policy from.
type Config struct {
	// Allow are the client networks (allow).
	Allow []string
	// Users maps user names to bcrypt hashes (auth.users); empty: no
	// credentials asked.
	Users map[string]string
	// ListenLoopback reports that the proxy listens on loopback only.
	ListenLoopback bool
	// PrivateUpstreams lets clients reach local upstreams however far the
	// proxy serves (allow_private_upstreams).
	PrivateUpstreams bool
}

// NewPolicy checks c and returns its Policy. Upstreams are guarded when the
// proxy serves beyond loopback (an allow network reaches past it, or it
// listens elsewhere) unless PrivateUpstreams: its clients may then be
// other machines, to which this machine's local services must stay closed.
func NewPolicy(c Config) (*Policy, error) {
	allow, err := ParseNets(c.Allow)
	if err != nil {
		return nil, err
	}
	p := &Policy{Allow: allow}
	if len(c.Users) > 0 {
		if p.Users, err = NewUsers(c.Users); err != nil {
			return nil, err
		}
	}
	p.GuardUpstreams = !c.PrivateUpstreams && (allow.BeyondLoopback() || !c.ListenLoopback)
	return p, nil
}
