package access

import (
	"encoding/base64"
	"strings"
)

// MaxBasicLen bounds a Proxy-Authorization value ParseBasic accepts. A
// bcrypt password is at most 72 bytes; 1 KiB leaves room for any sensible
// user name and keeps a hostile client from making us decode a large one.
const MaxBasicLen = 1024

// ParseBasic returns the user-id and password of a Basic credentials value
// (RFC 7617 §2): the scheme "Basic" in any case, one or more spaces (RFC
// 9110 §11.4), then the padded base64 (RFC 4648 §4) of user-id ":"
// password. ok is false for any other value, one longer than MaxBasicLen,
// or credentials with a control character (RFC 7617 §2 forbids them).
func ParseBasic(v string) (user, pass string, ok bool) {
	if len(v) > MaxBasicLen {
		return "", "", false
	}
	scheme, rest, found := strings.Cut(v, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(strings.TrimLeft(rest, " "))
	if err != nil {
		return "", "", false
	}
	user, pass, found = strings.Cut(string(b), ":") // RFC 7617 §2: the user-id has no colon
	if !found || hasCTL(user) || hasCTL(pass) {
		return "", "", false
	}
	return user, pass, true
}

// FormatBasic is the Basic credentials value for user and pass, as a client
// sends it. user must not contain a colon.
func FormatBasic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// hasCTL reports whether s has an ASCII control character (RFC 5234 CTL).
func hasCTL(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}
