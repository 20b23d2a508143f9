package policy

import "net/http"

// Reasons NotStorableReason gives, for access logs and the status page: a
// MISS an operator may wonder about names the rule that made it one.
const (
	ReasonStatus       = "status"        // not 200 or 206
	ReasonNoStore      = "no-store"      // RFC 9111 §5.2.2.5
	ReasonPrivate      = "private"       // RFC 9111 §5.2.2.7
	ReasonVaryStar     = "vary-star"     // RFC 9111 §4.1: Vary: * matches nothing
	ReasonAuthorized   = "authorization" // RFC 9111 §3.5
	ReasonEncodedRange = "encoded-range" // a 206 of a Content-Encoding
	ReasonStrayRange   = "content-range-in-200"
	ReasonNoValidator  = "no-validator" // neither a lifetime nor a validator
)

// NotStorableReason returns why a shared cache may not (RFC 9111 §3) or
// should not store resp, the answer to req: one of the Reason constants,
// or "" when it may (Storable). It is the one place those rules live, so
// the log says exactly what the cache decided.
func NotStorableReason(req *http.Request, resp *http.Response) string {
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		return ReasonStatus
	}
	rcc := parseCacheControl(resp.Header)
	switch {
	case rcc.has("no-store"):
		return ReasonNoStore
	case rcc.has("private"):
		return ReasonPrivate
	case hasVaryStar(resp.Header):
		return ReasonVaryStar
	case req.Header.Get("Authorization") != "" && !(rcc.has("public") || rcc.has("s-maxage") || rcc.has("must-revalidate")):
		return ReasonAuthorized // RFC 9111 §3.5
	}
	if resp.Header.Get("Content-Encoding") != "" && resp.StatusCode == http.StatusPartialContent {
		return ReasonEncodedRange // ranges of an encoded body: keep it simple, never splice those
	}
	if _, ok := resp.Header["Content-Range"]; ok && resp.StatusCode == http.StatusOK {
		// RFC 9110 §14.4: Content-Range means something in 206 and 416
		// only. In a 200 (a server answering our forwarded Range with
		// the bytes asked for but the status of the whole file) nobody
		// knows what the body holds: never store it as the complete file.
		return ReasonStrayRange
	}
	if _, hasLifetime := freshnessLifetime(resp.Header); !hasLifetime && !ValidatorOf(resp.Header).CanRevalidate() {
		return ReasonNoValidator
	}
	return ""
}
