package ca

// Lock order: Leaves.mu is the only lock. It is never held while a leaf is
// generated or while a Get waits for another's generation.

import (
	"container/list"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// defaultMaxLeaves bounds the cache when NewLeaves is given no bound:
	// a leaf takes about 1.5KB, so this is a few MB at most.
	defaultMaxLeaves = 1000
	// leafValidity is how long a leaf is valid at most: short, since it is
	// never revoked, but long enough to be generated rarely.
	leafValidity = 30 * 24 * time.Hour
	// leafRenewBefore is how long before its NotAfter a cached leaf is
	// replaced, so that no client receives one about to expire.
	leafRenewBefore = time.Hour
)

// Leaves issues leaf certificates signed by an Authority and caches them
// per server name. It is safe for concurrent use.
type Leaves struct {
	ca *Authority
	// key is the one private key of every leaf: it never leaves this
	// process, which holds the CA key anyway, so a key per leaf would buy
	// nothing and add ~10% to each generation (BenchmarkLeafKey). Nil when
	// keyErr is set.
	key *ecdsa.PrivateKey
	// keyErr is why key could not be generated; every Get returns it.
	keyErr error
	// max is how many leaves the cache holds at most.
	max int
	// now is the clock; tests replace it.
	now func() time.Time
	// generated counts the leaves generated so far.
	generated atomic.Int64

	// mu guards lru, byName and flights.
	mu sync.Mutex
	// lru holds the cached *leafEntry values, most recently used first.
	lru *list.List
	// byName maps a serverName key to its element in lru.
	byName map[string]*list.Element
	// flights maps a serverName key to the generation under way for it.
	flights map[string]*flight
}

// leafEntry is one cached leaf.
type leafEntry struct {
	key  string
	cert *tls.Certificate
}

// flight is one generation of a leaf that other Gets of the name wait for.
// cert and err are set before done is closed and read only after.
type flight struct {
	done chan struct{}
	cert *tls.Certificate
	err  error
}

// NewLeaves returns a cache of leaves signed by a, holding at most max
// leaves (the least recently used is evicted); max <= 0 means 1000.
func NewLeaves(a *Authority, max int) *Leaves {
	if max <= 0 {
		max = defaultMaxLeaves
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		err = fmt.Errorf("ca: generate leaf key: %w", err)
	}
	return &Leaves{
		ca:      a,
		key:     key,
		keyErr:  err,
		max:     max,
		now:     time.Now,
		lru:     list.New(),
		byName:  make(map[string]*list.Element),
		flights: make(map[string]*flight),
	}
}

// Get returns the leaf for a server name: an SNI name or a host, where an
// IP literal (bracketed IPv6 too) becomes an IP SAN and a name a DNS SAN,
// lower-cased without a trailing dot; an empty or invalid name is an
// error. A leaf is valid from an hour ago for 30 days, never past the CA;
// its Certificate chain is [leaf, CA] and Leaf is set. A cached leaf is
// reused until it is within an hour of its NotAfter. Concurrent Gets of a
// name that is not cached wait for one generation and share its result or
// error; an error is not cached.
func (l *Leaves) Get(name string) (*tls.Certificate, error) {
	n, err := normalizeName(name)
	if err != nil {
		return nil, fmt.Errorf("ca: leaf for %q: %w", name, err)
	}
	now := l.now()
	l.mu.Lock()
	if cert := l.cachedLocked(n.key, now); cert != nil {
		l.mu.Unlock()
		return cert, nil
	}
	f, leader := l.joinLocked(n.key)
	l.mu.Unlock()
	if !leader {
		<-f.done
		return f.cert, f.err
	}
	f.cert, f.err = l.generate(n, now)
	l.land(n.key, f)
	return f.cert, f.err
}

// Generated is how many leaves were generated so far: tests check that a
// name costs one generation however many Gets ask for it.
func (l *Leaves) Generated() int64 {
	return l.generated.Load()
}

// cachedLocked returns the cached leaf for key, marked most recently used,
// or nil if there is none fresh at now (a stale one is dropped).
func (l *Leaves) cachedLocked(key string, now time.Time) *tls.Certificate {
	e, ok := l.byName[key]
	if !ok {
		return nil
	}
	cert := e.Value.(*leafEntry).cert
	if !now.Before(cert.Leaf.NotAfter.Add(-leafRenewBefore)) {
		l.removeLocked(e)
		return nil
	}
	l.lru.MoveToFront(e)
	return cert
}

// joinLocked returns the flight generating key, and whether the caller
// started it and so must generate the leaf and land the flight.
func (l *Leaves) joinLocked(key string) (f *flight, leader bool) {
	if f, ok := l.flights[key]; ok {
		return f, false
	}
	f = &flight{done: make(chan struct{})}
	l.flights[key] = f
	return f, true
}

// land ends the flight for key: caches its leaf if it has one, then wakes
// its waiters. Caching first means a Get after a waiter returns finds the
// leaf and does not generate it again.
func (l *Leaves) land(key string, f *flight) {
	l.mu.Lock()
	delete(l.flights, key)
	if f.err == nil {
		l.addLocked(key, f.cert)
	}
	l.mu.Unlock()
	close(f.done)
}

// addLocked caches cert for key as the most recently used leaf and evicts
// the least recently used ones beyond max.
func (l *Leaves) addLocked(key string, cert *tls.Certificate) {
	if e, ok := l.byName[key]; ok {
		l.removeLocked(e)
	}
	l.byName[key] = l.lru.PushFront(&leafEntry{key: key, cert: cert})
	for l.lru.Len() > l.max {
		l.removeLocked(l.lru.Back())
	}
}

// removeLocked drops the cached leaf in e.
func (l *Leaves) removeLocked(e *list.Element) {
	delete(l.byName, e.Value.(*leafEntry).key)
	l.lru.Remove(e)
}

// generate signs a new leaf for n, valid from now.
func (l *Leaves) generate(n serverName, now time.Time) (*tls.Certificate, error) {
	if l.keyErr != nil {
		return nil, l.keyErr
	}
	if caEnd := l.ca.Cert.NotAfter; !now.Before(caEnd) {
		return nil, fmt.Errorf("ca: leaf for %s: CA expired at %s", n.key, caEnd.UTC())
	}
	tmpl, err := leafTemplate(n, now, l.ca.Cert.NotAfter)
	if err != nil {
		return nil, fmt.Errorf("ca: leaf for %s: %w", n.key, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, l.ca.Cert, &l.key.PublicKey, l.ca.Key)
	if err != nil {
		return nil, fmt.Errorf("ca: leaf for %s: sign: %w", n.key, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: leaf for %s: parse: %w", n.key, err)
	}
	l.generated.Add(1)
	return &tls.Certificate{
		Certificate: [][]byte{der, l.ca.Cert.Raw},
		PrivateKey:  l.key,
		Leaf:        leaf,
	}, nil
}

// leafTemplate is the certificate of a TLS server leaf for n, valid from
// now (less clockSkew) for leafValidity but never past caEnd: clients
// reject a chain that outlives its issuer.
func leafTemplate(n serverName, now, caEnd time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              earlier(now.Add(leafValidity), caEnd),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	// Clients match the SAN only (RFC 9525 §6.3); the CN is for people
	// reading the certificate, when it fits.
	if len(n.key) <= maxCommonName {
		tmpl.Subject = pkix.Name{CommonName: n.key}
	}
	if n.ip.IsValid() {
		tmpl.IPAddresses = []net.IP{n.ip.AsSlice()}
	} else {
		tmpl.DNSNames = []string{n.key}
	}
	return tmpl, nil
}

// earlier returns whichever of a and b comes first.
func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
