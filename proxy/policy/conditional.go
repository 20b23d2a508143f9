package policy

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// ErrBadRange is a 206 that does not match what was asked (wrong start, end
// or total): never spliced (DESIGN invariant 3). Its text still names the
// proxy, whose logs and 502 bodies it appears in.
var ErrBadRange = errors.New("proxy: upstream sent a mismatched Content-Range")

// CheckPreconditions evaluates a client's preconditions against the stored
// version, in the order of RFC 9110 §13.2.2. It returns 0 to go on, 304 or
// 412.
func CheckPreconditions(req *http.Request, v Validator) int {
	if im := strings.Join(req.Header.Values("If-Match"), ","); im != "" { // RFC 9110 §5.3: lines form one list
		if !etagListMatches(im, v, true) {
			return http.StatusPreconditionFailed
		}
	} else if t, err := http.ParseTime(req.Header.Get("If-Unmodified-Since")); err == nil && !v.lastModified.IsZero() {
		if v.lastModified.After(t) {
			return http.StatusPreconditionFailed
		}
	}
	if inm := strings.Join(req.Header.Values("If-None-Match"), ","); inm != "" {
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
func etagListMatches(list string, v Validator, strong bool) bool {
	if strings.TrimSpace(list) == "*" {
		return true
	}
	if v.etag == "" || (strong && v.weak) {
		return false
	}
	for _, t := range entityTags(list) {
		if strong && strings.HasPrefix(t, "W/") {
			continue
		}
		if strings.TrimPrefix(t, "W/") == strings.TrimPrefix(v.etag, "W/") {
			return true
		}
	}
	return false
}

// maxListTags bounds how many entity tags of a hostile list we look at.
const maxListTags = 64

// entityTags splits a list of entity tags (RFC 9110 §8.8.3); commas may
// occur inside the quotes, so the list is scanned, not split. Malformed
// elements are skipped.
func entityTags(list string) []string {
	var tags []string
	for rest := list; rest != "" && len(tags) < maxListTags; {
		rest = strings.TrimLeft(rest, " \t,")
		start := rest
		rest = strings.TrimPrefix(rest, "W/")
		if !strings.HasPrefix(rest, `"`) {
			_, rest, _ = strings.Cut(rest, ",") // not a tag: skip the element
			continue
		}
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			break
		}
		n := len(start) - len(rest) + end + 2
		tags = append(tags, start[:n])
		rest = start[n:]
	}
	return tags
}

// ifRangeMatches reports whether the client's If-Range lets its Range apply
// (RFC 9110 §13.1.5): an ETag by strong comparison, or a date equal to a
// strong Last-Modified. An absent If-Range always matches.
func ifRangeMatches(req *http.Request, v Validator) bool {
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

// Answer is how a client's request for a body of known size is answered.
type Answer struct {
	Status int             // 200, 206 or 416
	Range  rangeutil.Range // the bytes to send (all of them for 200)
}

// ChooseRange decides the status and bytes for a GET of a body of size
// bytes (RFC 9110 §14.2). A malformed, oversized or multi-range Range is
// answered with the whole body, which §14.2 allows; unsatisfiable gets 416.
func ChooseRange(req *http.Request, size int64, v Validator) Answer {
	full := Answer{Status: http.StatusOK, Range: rangeutil.Range{Start: 0, End: size}}
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
	case len(rs) == 0 && size == 0 && hasSuffix(specs):
		return full // RFC 9110 §14.1.2: a suffix is satisfiable on an empty body; nothing to cut
	case len(rs) == 0:
		return Answer{Status: http.StatusRequestedRangeNotSatisfiable}
	case len(specs) > 1:
		return full
	}
	return Answer{Status: http.StatusPartialContent, Range: rs[0]}
}

// ForwardRange returns the Range to send upstream for a client request on a
// resource of unknown size: the client's, when it is one well-formed range
// whose If-Range we need not evaluate, else "" (fetch everything).
func ForwardRange(req *http.Request) string {
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

// CheckPartialAnswer checks an upstream 206 against the Range that was sent
// with its request (DESIGN invariant 3: check every 206). RFC 9110 §14.4:
// its Content-Range must start at the first byte asked and end no later
// than the last. A 206 to a request without Range, or with an unreadable
// Content-Range, fails too; a multipart answer to several ranges has no
// Content-Range to check and passes.
func CheckPartialAnswer(sentRange string, resp *http.Response) error {
	if resp.StatusCode != http.StatusPartialContent {
		return nil
	}
	if sentRange == "" {
		return fmt.Errorf("%w: 206 to a request without Range", ErrBadRange)
	}
	specs, err := rangeutil.ParseRange(sentRange)
	if err != nil || len(specs) != 1 {
		return nil
	}
	cr, err := rangeutil.ParseContentRange(resp.Header.Get("Content-Range"))
	if err != nil || !answersRange(specs[0], cr) {
		return fmt.Errorf("%w: Content-Range %q answers Range %q", ErrBadRange, resp.Header.Get("Content-Range"), sentRange)
	}
	return nil
}

// answersRange reports whether cr is an answer to spec: the same first byte
// and no byte past the last one asked, for a representation of cr.Size
// bytes (an unknown size can only be checked for "a-b" and "a-").
func answersRange(spec rangeutil.Spec, cr rangeutil.ContentRange) bool {
	if cr.Unsatisfied || cr.Range.Len() <= 0 {
		return false
	}
	if cr.Size >= 0 {
		want, ok := spec.Resolve(cr.Size)
		return ok && cr.Range.Start == want.Start && cr.Range.End <= want.End
	}
	return spec.First >= 0 && cr.Range.Start == spec.First && (spec.Last < 0 || cr.Range.End <= spec.Last+1)
}

// AgeSeconds formats an Age value (RFC 9111 §5.1).
func AgeSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(max(0, d)/time.Second), 10)
}

func hasSuffix(specs []rangeutil.Spec) bool {
	for _, s := range specs {
		if s.First < 0 && s.Last > 0 {
			return true
		}
	}
	return false
}
