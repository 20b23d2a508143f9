package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// checkPreconditions evaluates a client's preconditions against the stored
// version, in the order of RFC 9110 §13.2.2. It returns 0 to go on, 304 or
// 412.
func checkPreconditions(req *http.Request, v validator) int {
	if im := req.Header.Get("If-Match"); im != "" {
		if !etagListMatches(im, v, true) {
			return http.StatusPreconditionFailed
		}
	} else if t, err := http.ParseTime(req.Header.Get("If-Unmodified-Since")); err == nil && !v.lastModified.IsZero() {
		if v.lastModified.After(t) {
			return http.StatusPreconditionFailed
		}
	}
	if inm := req.Header.Get("If-None-Match"); inm != "" {
		if etagListMatches(inm, v, false) {
			return http.StatusNotModified
		}
	} else if t, err := http.ParseTime(req.Header.Get("If-Modified-Since")); err == nil && !v.lastModified.IsZero() {
		if !v.lastModified.After(t) {
			return http.StatusNotModified
		}
	}
	return 0
}

// etagListMatches compares a list of entity tags (or "*") with v's ETag;
// strong comparison for If-Match, weak for If-None-Match (RFC 9110 §8.8.3.2).
func etagListMatches(list string, v validator, strong bool) bool {
	if strings.TrimSpace(list) == "*" {
		return true
	}
	if v.etag == "" || (strong && v.weak) {
		return false
	}
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if strong && strings.HasPrefix(t, "W/") {
			continue
		}
		if strings.TrimPrefix(t, "W/") == strings.TrimPrefix(v.etag, "W/") {
			return true
		}
	}
	return false
}

// ifRangeMatches reports whether the client's If-Range lets its Range apply
// (RFC 9110 §13.1.5): an ETag by strong comparison, or a date equal to a
// strong Last-Modified. An absent If-Range always matches.
func ifRangeMatches(req *http.Request, v validator) bool {
	ir := strings.TrimSpace(req.Header.Get("If-Range"))
	if ir == "" {
		return true
	}
	if strings.HasPrefix(ir, `"`) || strings.HasPrefix(ir, "W/") {
		return !strings.HasPrefix(ir, "W/") && ir == v.strongETag()
	}
	t, err := http.ParseTime(ir)
	return err == nil && v.strongDate() && t.Equal(v.lastModified)
}

// answer is how a client's request for a body of known size is answered.
type answer struct {
	status int             // 200, 206 or 416
	r      rangeutil.Range // the bytes to send (all of them for 200)
}

// chooseRange decides the status and bytes for a GET of a body of size
// bytes (RFC 9110 §14.2). A malformed, oversized or multi-range Range is
// answered with the whole body, which §14.2 allows; unsatisfiable gets 416.
func chooseRange(req *http.Request, size int64, v validator) answer {
	full := answer{status: http.StatusOK, r: rangeutil.Range{Start: 0, End: size}}
	h := req.Header.Get("Range")
	if h == "" || !ifRangeMatches(req, v) {
		return full
	}
	specs, err := rangeutil.ParseRange(h)
	if err != nil {
		return full
	}
	rs := rangeutil.ResolveAll(specs, size)
	switch {
	case len(rs) == 0:
		return answer{status: http.StatusRequestedRangeNotSatisfiable}
	case len(specs) > 1:
		return full
	}
	return answer{status: http.StatusPartialContent, r: rs[0]}
}

// forwardRange returns the Range to send upstream for a client request on a
// resource of unknown size: the client's, when it is one well-formed range
// whose If-Range we need not evaluate, else "" (fetch everything).
func forwardRange(req *http.Request) string {
	h := req.Header.Get("Range")
	if h == "" || req.Header.Get("If-Range") != "" {
		return ""
	}
	specs, err := rangeutil.ParseRange(h)
	if err != nil || len(specs) != 1 {
		return ""
	}
	return rangeutil.FormatSpecs(specs)
}

// ageSeconds formats an Age value (RFC 9111 §5.1).
func ageSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(max(0, d)/time.Second), 10)
}
