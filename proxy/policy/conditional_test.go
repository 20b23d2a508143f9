package policy

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/rangeutil"
)

func TestCheckPreconditions(t *testing.T) {
	before := "Mon, 01 Jan 2024 00:00:00 GMT" // earlier than ruleLM
	at := httpDate(ruleLM)
	after := httpDate(ruleT0)
	for _, c := range []struct {
		name string
		v    Validator
		req  []string
		want int
	}{
		{"none", vStrong, nil, 0},
		{"none, no validator", vNone, nil, 0},

		// RFC 9110 §13.1.1: If-Match, strong comparison.
		{"if-match", vStrong, []string{`If-Match: "v1"`}, 0},
		{"if-match other", vStrong, []string{`If-Match: "v0"`}, 412},
		{"if-match list", vStrong, []string{`If-Match: "v0", "v1"`}, 0},
		{"if-match star", vStrong, []string{`If-Match: *`}, 0},
		{"if-match star, no etag", vDate, []string{`If-Match: *`}, 0},
		{"if-match weak", vStrong, []string{`If-Match: W/"v1"`}, 412},
		{"if-match on weak", vWeak, []string{`If-Match: W/"v1"`}, 412},
		{"if-match on weak, strong form", vWeak, []string{`If-Match: "v1"`}, 412},
		{"if-match, no etag", vDate, []string{`If-Match: "v1"`}, 412},
		// Regression: checkPreconditions read only the first If-Match line
		// (Header.Get). RFC 9110 §5.3: several field lines of a list field
		// are one comma-joined list, here `"v0", "v1"`, which matches; the
		// request is refused with 412.
		{"if-match on two lines", vStrong, []string{`If-Match: "v0"`, `If-Match: "v1"`}, 0},

		// RFC 9110 §13.1.4: If-Unmodified-Since, ignored beside If-Match.
		{"if-unmodified-since later", vStrong, []string{"If-Unmodified-Since: " + after}, 0},
		{"if-unmodified-since equal", vStrong, []string{"If-Unmodified-Since: " + at}, 0},
		{"if-unmodified-since earlier", vStrong, []string{"If-Unmodified-Since: " + before}, 412},
		{"if-unmodified-since garbage", vStrong, []string{"If-Unmodified-Since: yesterday"}, 0},
		{"if-unmodified-since, no last-modified", vStrongOnly, []string{"If-Unmodified-Since: " + before}, 0},
		{"if-match beats if-unmodified-since", vStrong, []string{`If-Match: "v1"`, "If-Unmodified-Since: " + before}, 0},

		// RFC 9110 §13.1.2: If-None-Match, weak comparison; 304 for GET.
		{"if-none-match", vStrong, []string{`If-None-Match: "v1"`}, 304},
		{"if-none-match weak", vStrong, []string{`If-None-Match: W/"v1"`}, 304},
		{"if-none-match on weak", vWeak, []string{`If-None-Match: "v1"`}, 304},
		{"if-none-match other", vStrong, []string{`If-None-Match: "v0"`}, 0},
		{"if-none-match list", vStrong, []string{`If-None-Match: "v0", W/"v1"`}, 304},
		{"if-none-match star", vStrong, []string{`If-None-Match: *`}, 304},
		{"if-none-match, no etag", vDate, []string{`If-None-Match: "v1"`}, 0},

		// RFC 9110 §13.1.3: If-Modified-Since, ignored beside If-None-Match.
		{"if-modified-since later", vStrong, []string{"If-Modified-Since: " + after}, 304},
		{"if-modified-since equal", vStrong, []string{"If-Modified-Since: " + at}, 304},
		{"if-modified-since earlier", vStrong, []string{"If-Modified-Since: " + before}, 0},
		{"if-modified-since garbage", vStrong, []string{"If-Modified-Since: yesterday"}, 0},
		{"if-modified-since, no last-modified", vStrongOnly, []string{"If-Modified-Since: " + after}, 0},
		{"if-none-match beats if-modified-since", vStrong, []string{`If-None-Match: "v0"`, "If-Modified-Since: " + after}, 0},

		// RFC 9110 §13.2.2: steps 1-2 (412) come before steps 3-4 (304).
		{"if-match fails before if-none-match", vStrong, []string{`If-Match: "v0"`, `If-None-Match: "v1"`}, 412},
		{"if-unmodified-since fails before if-none-match", vStrong, []string{"If-Unmodified-Since: " + before, `If-None-Match: "v1"`}, 412},
		{"if-match holds, then if-none-match", vStrong, []string{`If-Match: "v1"`, `If-None-Match: "v1"`}, 304},
		{"if-unmodified-since holds, then if-modified-since", vStrong, []string{"If-Unmodified-Since: " + after, "If-Modified-Since: " + after}, 304},
	} {
		if got := CheckPreconditions(getRequest(c.req...), c.v); got != c.want {
			t.Errorf("%s: checkPreconditions(%q, %s) = %d, want %d", c.name, c.req, showValidator(c.v), got, c.want)
		}
	}
}

func TestETagListMatches(t *testing.T) {
	for _, c := range []struct {
		list   string
		v      Validator
		strong bool
		want   bool
	}{
		{`*`, vStrong, true, true},
		{` * `, vStrong, false, true},
		{`*`, vNone, true, true}, // "*": any current representation
		{`"v1"`, vNone, false, false},
		{``, vStrong, false, false},
		{`"v1"`, vStrong, true, true},
		{`"v1"`, vStrong, false, true},
		{`"V1"`, vStrong, false, false}, // opaque-tags compare octet by octet
		{`v1`, vStrong, false, false},
		{` "v0" ,  "v1" `, vStrong, true, true},
		{`"v0",,"v1"`, vStrong, true, true},
		{`"v0", "v2"`, vStrong, false, false},
		// RFC 9110 §8.8.3.2: strong comparison needs both tags strong; weak
		// comparison ignores the W/.
		{`W/"v1"`, vStrong, true, false},
		{`W/"v1"`, vStrong, false, true},
		{`"v1"`, vWeak, true, false},
		{`W/"v1"`, vWeak, true, false},
		{`"v1"`, vWeak, false, true},
		{`W/"v1"`, vWeak, false, true},
		{`W/"v0", W/"v1"`, vWeak, false, true},
		// Regression: etagListMatches split the list at every comma, also inside
		// an entity tag: a comma is an etagc (%x23-7E, RFC 9110 §8.8.3) and
		// validETag accepts `"a,b"`, but the list `"a,b"` becomes `"a` and
		// `b"` and never matches (a 412 for If-Match, a full 200 instead of
		// 304 for If-None-Match).
		{`"a,b"`, Validator{etag: `"a,b"`}, true, true},
		{`"x", "a,b"`, Validator{etag: `"a,b"`}, false, true},
	} {
		if got := etagListMatches(c.list, c.v, c.strong); got != c.want {
			t.Errorf("etagListMatches(%q, %s, strong=%v) = %v, want %v", c.list, showValidator(c.v), c.strong, got, c.want)
		}
	}
}

func TestIfRangeMatches(t *testing.T) {
	for _, c := range []struct {
		name    string
		ifRange string // "" for none
		v       Validator
		want    bool
	}{
		{"absent", "", vStrong, true},
		{"absent, no validator", "", vNone, true},
		// RFC 9110 §13.1.5: an entity tag by strong comparison.
		{"same etag", `"v1"`, vStrong, true},
		{"same etag, whitespace", `  "v1"  `, vStrong, true},
		{"other etag", `"v0"`, vStrong, false},
		{"weak tag", `W/"v1"`, vStrong, false},
		{"weak tag on weak", `W/"v1"`, vWeak, false},
		{"strong form on weak", `"v1"`, vWeak, false},
		{"etag, none stored", `"v1"`, vDate, false},
		{"unquoted", `v1`, vStrong, false},
		// A date only when it equals a strong Last-Modified.
		{"same date", httpDate(ruleLM), vDate, true},
		{"same date, etag stored too", httpDate(ruleLM), vStrong, true},
		{"same date, obsolete format", ruleLM.Format(time.RFC850), vDate, true},
		{"later date", httpDate(ruleLM.Add(time.Second)), vDate, false},
		{"earlier date", httpDate(ruleLM.Add(-time.Second)), vDate, false},
		{"same date, weak last-modified", httpDate(ruleLM), vDateWeak, false},
		{"date, no last-modified", httpDate(ruleLM), vStrongOnly, false},
		{"garbage", "yesterday", vDate, false},
	} {
		req := getRequest()
		if c.ifRange != "" {
			req.Header.Set("If-Range", c.ifRange)
		}
		if got := ifRangeMatches(req, c.v); got != c.want {
			t.Errorf("%s: ifRangeMatches(If-Range %q, %s) = %v, want %v", c.name, c.ifRange, showValidator(c.v), got, c.want)
		}
	}
}

func TestChooseRange(t *testing.T) {
	const size = 1000
	full := Answer{Status: 200, Range: rangeutil.Range{Start: 0, End: size}}
	part := func(start, end int64) Answer {
		return Answer{Status: 206, Range: rangeutil.Range{Start: start, End: end}}
	}
	unsatisfiable := Answer{Status: 416}
	many := "bytes=" + strings.Repeat("0-0,", rangeutil.MaxRanges) + "0-0"
	for _, c := range []struct {
		name string
		req  []string
		v    Validator
		want Answer
	}{
		{"no range", nil, vStrong, full},
		{"if-range without range", []string{`If-Range: "v0"`}, vStrong, full},

		// RFC 9110 §14.1.2: one satisfiable range gets a 206.
		{"first bytes", []string{"Range: bytes=0-99"}, vStrong, part(0, 100)},
		{"one byte", []string{"Range: bytes=0-0"}, vStrong, part(0, 1)},
		{"last byte", []string{"Range: bytes=999-999"}, vStrong, part(999, 1000)},
		{"open end", []string{"Range: bytes=900-"}, vStrong, part(900, 1000)},
		{"suffix", []string{"Range: bytes=-100"}, vStrong, part(900, 1000)},
		{"suffix longer than body", []string{"Range: bytes=-5000"}, vStrong, part(0, 1000)},
		{"last beyond end", []string{"Range: bytes=500-99999"}, vStrong, part(500, 1000)},
		{"unit case", []string{"Range: BYTES=0-9"}, vStrong, part(0, 10)},
		{"empty elements", []string{"Range: bytes=, 0-9 ,"}, vStrong, part(0, 10)},
		{"no validator", []string{"Range: bytes=0-9"}, vNone, part(0, 10)},

		// RFC 9110 §14.2: a server MAY ignore Range; we answer with all of it.
		{"two ranges", []string{"Range: bytes=0-9,20-29"}, vStrong, full},
		{"two ranges, one satisfiable", []string{"Range: bytes=0-9,5000-"}, vStrong, full},
		{"unknown unit", []string{"Range: items=0-9"}, vStrong, full},
		{"last before first", []string{"Range: bytes=9-0"}, vStrong, full},
		{"no equals", []string{"Range: bytes 0-9"}, vStrong, full},
		{"empty set", []string{"Range: bytes="}, vStrong, full},
		{"letters", []string{"Range: bytes=a-b"}, vStrong, full},
		{"whitespace around =", []string{"Range: bytes = 0-9"}, vStrong, full},
		{"too long", []string{"Range: bytes=" + strings.Repeat("9", rangeutil.MaxRangeHeaderLen) + "-"}, vStrong, full},
		{"too many", []string{"Range: " + many}, vStrong, full},

		// RFC 9110 §15.5.17: none satisfiable gets a 416.
		{"starts at end", []string{"Range: bytes=1000-"}, vStrong, unsatisfiable},
		{"starts beyond end", []string{"Range: bytes=2000-3000"}, vStrong, unsatisfiable},
		{"empty suffix", []string{"Range: bytes=-0"}, vStrong, unsatisfiable},
		{"two, none satisfiable", []string{"Range: bytes=1000-,2000-"}, vStrong, unsatisfiable},
		{"if-range holds, unsatisfiable", []string{"Range: bytes=1000-", `If-Range: "v1"`}, vStrong, unsatisfiable},

		// RFC 9110 §13.1.5: If-Range decides whether Range applies at all.
		{"if-range etag", []string{"Range: bytes=10-", `If-Range: "v1"`}, vStrong, part(10, 1000)},
		{"if-range date", []string{"Range: bytes=10-", "If-Range: " + httpDate(ruleLM)}, vDate, part(10, 1000)},
		{"if-range other etag", []string{"Range: bytes=10-", `If-Range: "v0"`}, vStrong, full},
		{"if-range weak", []string{"Range: bytes=10-", `If-Range: W/"v1"`}, vWeak, full},
		{"if-range weak date", []string{"Range: bytes=10-", "If-Range: " + httpDate(ruleLM)}, vDateWeak, full},
		{"if-range mismatch, unsatisfiable", []string{"Range: bytes=5000-", `If-Range: "v0"`}, vStrong, full},
	} {
		if got := ChooseRange(getRequest(c.req...), size, c.v); got != c.want {
			t.Errorf("%s: chooseRange(%q, %d, %s) = %+v, want %+v", c.name, c.req, size, showValidator(c.v), got, c.want)
		}
	}
}

// TestChooseRangeTinyBodies: bodies of one byte and of none.
func TestChooseRangeTinyBodies(t *testing.T) {
	for _, c := range []struct {
		name string
		rng  string
		size int64
		want Answer
	}{
		{"one byte", "bytes=0-", 1, Answer{Status: 206, Range: rangeutil.Range{Start: 0, End: 1}}},
		{"one byte, suffix", "bytes=-5", 1, Answer{Status: 206, Range: rangeutil.Range{Start: 0, End: 1}}},
		{"one byte, past the end", "bytes=1-", 1, Answer{Status: 416}},
		// Regression: for an empty body chooseRange answered a suffix range with 416.
		// RFC 9110 §14.1.2: "When a selected representation has zero length,
		// the only satisfiable form of range-spec in a GET request is a
		// suffix-range with a non-zero suffix-length", so this Range is
		// satisfiable and 416 (§15.5.17: none satisfiable) is wrong; no 206
		// can describe zero bytes, so ignore Range (§14.2: a server MAY
		// ignore it when the representation has no content) and send the
		// empty 200, as rangeutil.Spec.Resolve's doc intends.
		{"empty body, suffix", "bytes=-5", 0, Answer{Status: 200}},
	} {
		req := getRequest("Range: " + c.rng)
		if got := ChooseRange(req, c.size, vStrong); got != c.want {
			t.Errorf("%s: chooseRange(Range %q, %d, %s) = %+v, want %+v", c.name, c.rng, c.size, showValidator(vStrong), got, c.want)
		}
	}
}

func TestForwardRange(t *testing.T) {
	for _, c := range []struct {
		req  []string
		want string
	}{
		{nil, ""},
		{[]string{"Range: bytes=0-99"}, "bytes=0-99"},
		{[]string{"Range: bytes=100-"}, "bytes=100-"},
		{[]string{"Range: bytes=-100"}, "bytes=-100"},
		{[]string{"Range: BYTES=0-99"}, "bytes=0-99"},         // re-formatted
		{[]string{"Range: bytes= 0-99 ,"}, "bytes=0-99"},      // re-formatted
		{[]string{"Range: bytes=0-9,20-29"}, ""},              // several: fetch everything
		{[]string{"Range: bytes=9-0"}, ""},                    // invalid
		{[]string{"Range: items=0-9"}, ""},                    // unknown unit
		{[]string{"Range: bytes=0-99", `If-Range: "v1"`}, ""}, // only we can evaluate If-Range against our entry
		{[]string{"Range: bytes=0-99", "If-Range: " + httpDate(ruleLM)}, ""},
	} {
		if got := ForwardRange(getRequest(c.req...)); got != c.want {
			t.Errorf("forwardRange(%q) = %q, want %q", c.req, got, c.want)
		}
	}
}

func TestAgeSeconds(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0"},
		{999 * time.Millisecond, "0"},
		{1999 * time.Millisecond, "1"}, // RFC 9111 §5.1: whole seconds, truncated
		{100 * time.Second, "100"},
		{-5 * time.Second, "0"}, // delta-seconds is never negative
		{maxDeltaSeconds, "2147483647"},
		{200 * 365 * 24 * time.Hour, "6307200000"},
	} {
		if got := AgeSeconds(c.d); got != c.want {
			t.Errorf("ageSeconds(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

// TestCheckPartialAnswer: a 206 must answer the Range that was sent (RFC
// 9110 §14.4; DESIGN invariant 3), row by row.
func TestCheckPartialAnswer(t *testing.T) {
	for _, c := range []struct {
		sent, contentRange string
		status             int
		ok                 bool
	}{
		{"", "", 200, true},
		{"bytes=0-", "", 200, true}, // a 200 is a whole body: never checked here
		{"bytes=100-", "bytes 100-999/1000", 206, true},
		{"bytes=100-199", "bytes 100-199/1000", 206, true},
		{"bytes=100-199", "bytes 100-149/1000", 206, true}, // fewer bytes, same start
		{"bytes=100-", "bytes 91-990/1000", 206, false},    // a lie: shifted
		{"bytes=100-199", "bytes 100-200/1000", 206, false},
		{"bytes=100-", "bytes 100-999/2000", 206, true}, // fewer bytes than asked: allowed, the rest is asked for later
		{"bytes=-100", "bytes 900-999/1000", 206, true},
		{"bytes=-100", "bytes 800-899/1000", 206, false},
		{"bytes=100-", "bytes 100-999/*", 206, true},
		{"bytes=-100", "bytes 900-999/*", 206, false}, // a suffix cannot be checked without the size
		{"bytes=100-", "bytes */1000", 206, false},
		{"bytes=100-", "garbage", 206, false},
		{"", "bytes 0-99/1000", 206, false}, // nobody asked for a part
		{"bytes=0-9,20-29", "", 206, true},  // multipart: no Content-Range to check
	} {
		resp := &http.Response{StatusCode: c.status, Header: http.Header{}}
		if c.contentRange != "" {
			resp.Header.Set("Content-Range", c.contentRange)
		}
		err := CheckPartialAnswer(c.sent, resp)
		if (err == nil) != c.ok {
			t.Errorf("checkPartialAnswer(%q, %d %q) = %v, want ok %v", c.sent, c.status, c.contentRange, err, c.ok)
		}
	}
}
