package access

import (
	"encoding/base64"
	"strings"
	"testing"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestParseBasic(t *testing.T) {
	tests := []struct {
		in         string
		user, pass string
		ok         bool
	}{
		{"Basic " + b64("alice:s3cret"), "alice", "s3cret", true},
		{"basic " + b64("alice:s3cret"), "alice", "s3cret", true}, // RFC 9110 §11.1: case-insensitive scheme
		{"BASIC   " + b64("alice:s3cret"), "alice", "s3cret", true},
		{"Basic " + b64("alice:a:b"), "alice", "a:b", true}, // the password may have colons
		{"Basic " + b64("alice:"), "alice", "", true},
		{"Basic " + b64(":pw"), "", "pw", true},
		{"Basic " + b64("élise:mot de passe"), "élise", "mot de passe", true},
		{"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "Aladdin", "open sesame", true}, // RFC 7617 §2
		{"", "", "", false},
		{"Basic", "", "", false},
		{"Basic ", "", "", false},
		{"Bearer " + b64("alice:s3cret"), "", "", false},
		{"Basic " + b64("alice"), "", "", false}, // no colon
		{"Basic " + strings.TrimRight(b64("alice:s3cret1"), "="), "", "", false},
		{"Basic " + b64("alice:s3cret") + "!", "", "", false},
		{"Basic " + b64("al\x00ice:pw"), "", "", false},
		{"Basic " + b64("alice:p\x7fw"), "", "", false},
		{"Basic " + b64("alice:"+strings.Repeat("x", MaxBasicLen)), "", "", false},
		{"Basic\t" + b64("alice:s3cret"), "", "", false},
	}
	for _, tt := range tests {
		user, pass, ok := ParseBasic(tt.in)
		if user != tt.user || pass != tt.pass || ok != tt.ok {
			t.Errorf("ParseBasic(%.40q) = %q, %q, %v; want %q, %q, %v", tt.in, user, pass, ok, tt.user, tt.pass, tt.ok)
		}
	}
}

// FuzzParseBasic: ParseBasic never panics; what it accepts has no control
// characters and a user-id without a colon, and formats back to a value
// that parses the same; and credentials it can carry survive FormatBasic.
func FuzzParseBasic(f *testing.F) {
	f.Add("Basic " + b64("alice:s3cret"))
	f.Add("basic   " + b64("a:b:c"))
	f.Add("Basic " + b64("\x00:x"))
	f.Add("Basic ====")
	f.Add("Basic\r\n" + b64("a:b"))
	f.Add("Negotiate abc")
	f.Fuzz(func(t *testing.T, in string) {
		user, pass, ok := ParseBasic(in)
		if ok {
			if strings.Contains(user, ":") || hasCTL(user) || hasCTL(pass) {
				t.Fatalf("ParseBasic(%q) = %q, %q, true: a colon in the user-id or a control character", in, user, pass)
			}
			if u, p, ok2 := ParseBasic(FormatBasic(user, pass)); len(FormatBasic(user, pass)) <= MaxBasicLen && (!ok2 || u != user || p != pass) {
				t.Fatalf("ParseBasic(FormatBasic(%q, %q)) = %q, %q, %v; want them back", user, pass, u, p, ok2)
			}
		}
		// The fuzz input as the password of a fixed user: it comes back
		// unless it holds a control character or is too long.
		v := FormatBasic("u", in)
		u, p, ok := ParseBasic(v)
		if want := !hasCTL(in) && len(v) <= MaxBasicLen; ok != want || ok && (u != "u" || p != in) {
			t.Fatalf("ParseBasic(FormatBasic(u, %q)) = %q, %q, %v; want ok %v", in, u, p, ok, want)
		}
	})
}
