package policy

import (
	"net/http"
	"strings"
	"time"
)

// maxHeuristic caps heuristic freshness (RFC 9111 §4.2.2 leaves the cap to
// the cache; a day is what common caches use).
const maxHeuristic = 24 * time.Hour

// freshnessLifetime computes how long a response stays fresh in a shared
// cache (RFC 9111 §4.2.1); ok is false when nothing says.
func freshnessLifetime(h http.Header) (time.Duration, bool) {
	cc := parseCacheControl(h)
	if cc.has("no-cache") {
		return 0, true // stored, but revalidated before every use (§5.2.2.4)
	}
	if d, ok := cc.seconds("s-maxage"); ok {
		return d, true
	}
	if d, ok := cc.seconds("max-age"); ok {
		return d, true
	}
	date, dateErr := http.ParseTime(h.Get("Date"))
	if exp := h.Get("Expires"); exp != "" {
		t, err := http.ParseTime(exp)
		if err != nil || dateErr != nil {
			return 0, true // §5.3: an invalid Expires means "already expired"
		}
		return max(0, t.Sub(date)), true
	}
	if lm, err := http.ParseTime(h.Get("Last-Modified")); err == nil && dateErr == nil && date.After(lm) {
		return min(date.Sub(lm)/10, maxHeuristic), true // §4.2.2: 10% of the age
	}
	return 0, false
}

// InitialAge computes how old a response was when it arrived
// (corrected_initial_age, RFC 9111 §4.2.3): the larger of its apparent age
// (response_time - Date) and the Age an upstream cache sent, corrected by
// the time the request took (response_delay). It is stored with the entry;
// the Age field is not, since the age it states grows while we hold the
// response.
func InitialAge(h http.Header, requestTime, responseTime time.Time) time.Duration {
	var apparent time.Duration
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		apparent = max(0, responseTime.Sub(date))
	}
	ageValue, _ := deltaSeconds(strings.TrimSpace(h.Get("Age")))
	corrected := ageValue + max(0, responseTime.Sub(requestTime))
	return max(apparent, corrected)
}

// CurrentAge computes the age of a stored response now (current_age, RFC
// 9111 §4.2.3): its initial age plus the time it has been stored here.
func CurrentAge(initial time.Duration, responseTime, now time.Time) time.Duration {
	return initial + max(0, now.Sub(responseTime))
}

// Fresh reports whether a stored response with header h and current age
// age may answer req without revalidation (RFC 9111 §4.2, with the request's
// no-cache and max-age of §5.2.1).
func Fresh(req *http.Request, h http.Header, age time.Duration) bool {
	rcc := parseCacheControl(req.Header)
	if rcc.has("no-cache") || (len(rcc) == 0 && pragmaNoCache(req.Header)) {
		return false // §5.4: Pragma only counts without Cache-Control
	}
	lifetime, ok := freshnessLifetime(h)
	if !ok {
		return false
	}
	if maxAge, ok := rcc.seconds("max-age"); ok && age > maxAge {
		return false
	}
	return lifetime > age
}

// pragmaNoCache reports a no-cache element in Pragma, a case-insensitive
// list (RFC 9111 §5.4).
func pragmaNoCache(h http.Header) bool {
	for _, e := range normalizeValues(h.Values("Pragma")) {
		if strings.EqualFold(e, "no-cache") {
			return true
		}
	}
	return false
}
