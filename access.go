package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/resumeproxy/resumeproxy/internal/access"
	"github.com/resumeproxy/resumeproxy/internal/config"
)

// accessPolicy builds the proxy's access policy from a validated config.
func accessPolicy(cfg config.Config) (*access.Policy, error) {
	p, err := access.NewPolicy(access.Config{
		Allow:            cfg.Allow,
		Users:            cfg.Auth.Users,
		ListenLoopback:   cfg.ListenLoopback(),
		PrivateUpstreams: cfg.AllowPrivateUpstreams,
	})
	if err != nil {
		return nil, usageError{err} // Validate saw it first
	}
	return p, nil
}

// warnUnreachable says when the proxy listens beyond loopback with
// credentials but allow still admits loopback clients only: every other
// machine would get 403, which is rarely what was meant.
func warnUnreachable(log *slog.Logger, cfg config.Config, p *access.Policy) {
	if !cfg.ListenLoopback() && !p.Allow.BeyondLoopback() {
		log.Warn("listening beyond loopback, but allow admits loopback clients only: other machines get 403 (widen allow, e.g. [0.0.0.0/0, ::/0] with users)",
			"listen", cfg.Listen, "allow", p.Allow.String())
	}
}

// selfAddrs returns the addresses that reach the listener at addr (the
// bound one, so port 0 is resolved): with an unspecified host, every local
// interface address with its port. Requests to them are loops.
func selfAddrs(addr net.Addr) ([]netip.AddrPort, error) {
	bound, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return nil, fmt.Errorf("listen: bound address %s: %w", addr, err)
	}
	var local []netip.Addr
	if bound.Addr().IsUnspecified() {
		ifaddrs, err := net.InterfaceAddrs()
		if err != nil {
			return nil, fmt.Errorf("listen: local addresses: %w", err)
		}
		for _, a := range ifaddrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					local = append(local, ip.Unmap())
				}
			}
		}
	}
	return access.SelfAddrs(bound, local), nil
}
