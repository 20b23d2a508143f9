package policy

import (
	"net/http"
	"strings"
)

// hopByHop are the header fields that belong to one connection, not to the
// message (RFC 9110 §7.6.1), plus the proxy-authentication pair that is
// addressed to us. Canonical names: they are deleted from the map directly.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer",
	"Transfer-Encoding", "Upgrade", "Proxy-Authenticate", "Proxy-Authorization",
}

// RemoveHopByHop deletes the hop-by-hop fields of h, including every field
// that Connection names (RFC 9110 §7.6.1).
func RemoveHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	deleteCanonical(h, hopByHop)
}

// deleteCanonical deletes names, which must be in canonical form, from h.
// Every request runs through it several times: Header.Del would
// canonicalize each name again, which cost more than the deletions.
func deleteCanonical(h http.Header, names []string) {
	for _, name := range names {
		delete(h, name)
	}
}

// notStored are response fields never kept in the cache: hop-by-hop ones,
// per-message framing, and Set-Cookie, which is private to one client
// (DESIGN invariant 6).
var notStored = []string{"Set-Cookie", "Set-Cookie2", "Content-Length", "Content-Range", "Age", "X-Cache"}

// StoredHeader returns the copy of a response's header that goes into the
// cache.
func StoredHeader(h http.Header) http.Header {
	c := h.Clone()
	RemoveHopByHop(c)
	deleteCanonical(c, notStored)
	return c
}

// conditionalFields are the request preconditions (RFC 9110 §13.1) and
// Range; the proxy evaluates the client's own against the cache and sends
// its own upstream.
var conditionalFields = []string{
	"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range", "Range",
}

// UpstreamHeader returns the header to send upstream for a client request:
// end-to-end fields only, without the client's preconditions and Range, with
// our Via added.
func UpstreamHeader(client http.Header, via string) http.Header {
	h := client.Clone()
	RemoveHopByHop(h)
	deleteCanonical(h, conditionalFields)
	AddVia(h, via)
	return h
}

// AddVia appends our hop to Via (RFC 9110 §7.6.3).
func AddVia(h http.Header, via string) {
	h.Add("Via", "1.1 "+via)
}
