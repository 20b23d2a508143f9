package access

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Outcomes of Users.Check that callers branch on. Both answer 407.
var (
	// ErrNoCredentials: the request has no Basic credentials, or ones that
	// do not parse.
	ErrNoCredentials = errors.New("access: proxy credentials required")
	// ErrBadCredentials: an unknown user or a wrong password.
	ErrBadCredentials = errors.New("access: wrong proxy credentials")
)

// maxPassword is the longest password bcrypt takes: it hashes only the
// first 72 bytes, so a longer one is refused rather than truncated.
const maxPassword = 72

// maxVerified bounds the remembered good credentials (Users.verified); the
// whole set is dropped when full.
const maxVerified = 1024

// Users are the accounts clients authenticate as: a user name and the
// bcrypt hash of its password. Checking a password costs a bcrypt
// comparison (about 50 ms at cost 10), so credentials that passed are
// remembered, by a keyed hash of the header value (never the password), and
// at most one comparison per CPU runs at once: a client sending wrong
// passwords cannot take every core.
type Users struct {
	names  []string
	hashes [][]byte
	sem    chan struct{} // one slot per concurrent bcrypt comparison

	// key is the random HMAC key of verified's keys, so that they are
	// worthless outside this process.
	key [32]byte
	// mu guards verified.
	mu sync.Mutex
	// verified maps HMAC(key, header value) of credentials that passed to
	// their user.
	verified map[[32]byte]string
}

// NewUsers returns the accounts of hashes (user name → bcrypt hash, as
// `resumeproxy passwd` prints it). It checks every name and hash.
func NewUsers(hashes map[string]string) (*Users, error) {
	u := &Users{sem: make(chan struct{}, runtime.GOMAXPROCS(0)), verified: map[[32]byte]string{}}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range hashes {
			if !yield(n) {
				return
			}
		}
	})
	if len(names) == 0 {
		return nil, errors.New("access: no users")
	}
	for _, n := range names {
		if err := CheckUserName(n); err != nil {
			return nil, err
		}
		if err := CheckHash(hashes[n]); err != nil {
			return nil, fmt.Errorf("access: user %q: %w", n, err)
		}
		u.names, u.hashes = append(u.names, n), append(u.hashes, []byte(hashes[n]))
	}
	if _, err := rand.Read(u.key[:]); err != nil {
		return nil, fmt.Errorf("access: random key: %w", err)
	}
	return u, nil
}

// CheckUserName reports whether name can be a Basic user-id: not empty, no
// colon, no control character (RFC 7617 §2).
func CheckUserName(name string) error {
	if name == "" || strings.Contains(name, ":") || hasCTL(name) {
		return fmt.Errorf("access: user name %q: must be non-empty, without ':' or control characters (RFC 7617)", name)
	}
	return nil
}

// CheckHash reports whether h is a bcrypt hash.
func CheckHash(h string) error {
	if _, err := bcrypt.Cost([]byte(h)); err != nil {
		return fmt.Errorf("not a bcrypt hash (make one with `resumeproxy passwd`): %w", err)
	}
	return nil
}

// Check returns the user whose credentials the Proxy-Authorization value
// auth carries, or ErrNoCredentials or ErrBadCredentials. The time taken
// does not tell whether a user name exists: an unknown name costs a bcrypt
// comparison too, and names are compared in constant time. It waits for a
// free comparison slot until ctx is done.
func (u *Users) Check(ctx context.Context, auth string) (string, error) {
	user, pass, ok := ParseBasic(auth)
	if !ok {
		return "", ErrNoCredentials
	}
	mac := u.mac(auth)
	if name, ok := u.remembered(mac); ok {
		return name, nil
	}
	i := u.index(user)
	select {
	case u.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("access: waiting to check credentials: %w", ctx.Err())
	}
	// An unknown name is compared with the first user's hash, and the
	// result ignored: the same work as a known one.
	err := bcrypt.CompareHashAndPassword(u.hashes[max(i, 0)], []byte(pass))
	<-u.sem
	if i < 0 || err != nil || len(pass) > maxPassword {
		return "", ErrBadCredentials
	}
	u.remember(mac, u.names[i])
	return u.names[i], nil
}

// index returns the position of user in u.names, or -1, comparing every
// name in constant time.
func (u *Users) index(user string) int {
	found := -1
	for i, n := range u.names {
		eq := subtle.ConstantTimeCompare([]byte(n), []byte(user))
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	return found
}

func (u *Users) mac(auth string) [32]byte {
	m := hmac.New(sha256.New, u.key[:])
	m.Write([]byte(auth))
	return [32]byte(m.Sum(nil))
}

func (u *Users) remembered(mac [32]byte) (string, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	name, ok := u.verified[mac]
	return name, ok
}

func (u *Users) remember(mac [32]byte, name string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.verified) >= maxVerified {
		clear(u.verified)
	}
	u.verified[mac] = name
}

// Hash returns the bcrypt hash of password at cost (bcrypt.MinCost to
// bcrypt.MaxCost), for `resumeproxy passwd`.
func Hash(password []byte, cost int) (string, error) {
	if len(password) == 0 {
		return "", errors.New("access: empty password")
	}
	if len(password) > maxPassword {
		return "", fmt.Errorf("access: password is %d bytes; bcrypt takes at most %d", len(password), maxPassword)
	}
	if hasCTL(string(password)) {
		return "", errors.New("access: password has a control character (RFC 7617 forbids them)")
	}
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return "", fmt.Errorf("access: cost %d is outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	h, err := bcrypt.GenerateFromPassword(password, cost)
	if err != nil {
		return "", fmt.Errorf("access: hash password: %w", err)
	}
	return string(h), nil
}

// DefaultCost is the bcrypt cost `resumeproxy passwd` uses by default: a
// check takes about 50 ms, and good credentials are remembered after it.
const DefaultCost = bcrypt.DefaultCost
