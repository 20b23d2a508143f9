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
