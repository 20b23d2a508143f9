package policy

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Fixed instants for the table tests of the pure HTTP rules: no test here
// reads the clock.
var (
	ruleT0 = time.Date(2025, time.March, 1, 12, 0, 0, 0, time.UTC)
	ruleLM = ruleT0.Add(-10 * time.Hour) // a Last-Modified well before ruleT0
)

// maxDeltaSeconds is what an over-large delta-seconds becomes (RFC 9111 §1.2.2).
const maxDeltaSeconds = (1<<31 - 1) * time.Second

// httpDate formats t as an IMF-fixdate (RFC 9110 §5.6.7).
func httpDate(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

// headerOf builds a header from "Name: value" lines; a name may repeat, one
// field line each.
func headerOf(lines ...string) http.Header {
	h := http.Header{}
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			panic("headerOf: no colon in " + l)
		}
		h.Add(name, strings.TrimSpace(value))
	}
	return h
}

// getRequest is a client GET with the given header lines.
func getRequest(lines ...string) *http.Request {
	return requestWith(http.MethodGet, lines...)
}

func requestWith(method string, lines ...string) *http.Request {
	req, err := http.NewRequest(method, "http://origin.test/f", nil)
	if err != nil {
		panic(err)
	}
	req.Header = headerOf(lines...)
	return req
}

func TestParseCacheControl(t *testing.T) {
	many := make([]string, 40)
	for i := range many {
		many[i] = fmt.Sprintf("d%02d", i)
	}
	first32 := cacheControl{}
	for _, d := range many[:maxDirectives] {
		first32[d] = ""
	}
	for _, c := range []struct {
		name  string
		lines []string
		want  cacheControl
	}{
		{"absent", nil, cacheControl{}},
		{"empty", []string{"Cache-Control: "}, cacheControl{}},
		{"one", []string{"Cache-Control: max-age=60"}, cacheControl{"max-age": "60"}},
		// RFC 9111 §5.2: directive names are case-insensitive; arguments keep their case.
		{"case", []string{`Cache-Control: No-Store, MAX-AGE=60, Private="Set-Cookie"`},
			cacheControl{"no-store": "", "max-age": "60", "private": "Set-Cookie"}},
		// RFC 9111 §5.2: recipients accept the quoted-string form too.
		{"quoted", []string{`Cache-Control: max-age="60"`}, cacheControl{"max-age": "60"}},
		// RFC 9110 §5.6.1: OWS around list elements.
		{"whitespace", []string{"Cache-Control:   public ,\tmax-age=5  "}, cacheControl{"public": "", "max-age": "5"}},
		// RFC 9110 §5.6.1: recipients accept empty list elements.
		{"empty elements", []string{"Cache-Control: ,, public,,,max-age=5,"}, cacheControl{"public": "", "max-age": "5"}},
		{"several lines", []string{"Cache-Control: public", "Cache-Control: max-age=5"}, cacheControl{"public": "", "max-age": "5"}},
		{"empty argument", []string{"Cache-Control: max-age="}, cacheControl{"max-age": ""}},
		{"no name", []string{"Cache-Control: =5, public"}, cacheControl{"public": ""}},
		{"bound", []string{"Cache-Control: " + strings.Join(many, ", ")}, first32},
		{"bound across lines", []string{"Cache-Control: " + strings.Join(many[:20], ","), "Cache-Control: " + strings.Join(many[20:], ",")}, first32},
		{"empty elements do not count", []string{"Cache-Control: " + strings.Repeat(",", 100) + strings.Join(many[:maxDirectives], ",")}, first32},
	} {
		h := headerOf(c.lines...)
		if got := parseCacheControl(h); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: parseCacheControl(%q) = %v, want %v", c.name, h.Values("Cache-Control"), got, c.want)
		}
	}
}

func TestCacheControlSeconds(t *testing.T) {
	for _, c := range []struct {
		value  string // the Cache-Control field; we ask for max-age
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"public", 0, false},
		{"max-age=0", 0, true},
		{"max-age=60", 60 * time.Second, true},
		{`max-age="60"`, 60 * time.Second, true}, // RFC 9111 §5.2: accept both forms
		{"max-age=2147483647", maxDeltaSeconds, true},
		// RFC 9111 §1.2.2: larger values count as "infinity", 2^31 s (68 years).
		{"max-age=2147483648", maxDeltaSeconds, true},
		{"max-age=9223372036854775807", maxDeltaSeconds, true},
		// Regression: seconds returned (0, false) for a delta-seconds that overflows
		// int64: strconv.ParseInt fails with ErrRange and the directive is
		// treated as absent. RFC 9111 §1.2.2: "If a cache receives a
		// delta-seconds value greater than the greatest integer it can
		// represent ... the cache MUST consider the value to be 2147483648
		// (2^31) or the greatest positive integer it can conveniently
		// represent."
		{"max-age=99999999999999999999", maxDeltaSeconds, true},
		{"max-age=-1", 0, false}, // delta-seconds = 1*DIGIT (RFC 9111 §1.2.2)
		{"max-age=abc", 0, false},
		{"max-age=1.5", 0, false},
		{"max-age=", 0, false},
		{"max-age", 0, false},
		{"max-age = 60", 0, false}, // RFC 9111 §5.2: no whitespace around "=" in the grammar
	} {
		cc := parseCacheControl(headerOf("Cache-Control: " + c.value))
		got, ok := cc.seconds("max-age")
		if got != c.want || ok != c.wantOK {
			t.Errorf("seconds(max-age) of %q = %v, %v, want %v, %v", c.value, got, ok, c.want, c.wantOK)
		}
	}
}

func TestRequestUsesCache(t *testing.T) {
	for _, c := range []struct {
		method string
		lines  []string
		want   bool
	}{
		{http.MethodGet, nil, true},
		{http.MethodGet, []string{"Cache-Control: no-cache"}, true}, // revalidated, still cached
		{http.MethodGet, []string{"Cache-Control: max-age=0"}, true},
		// RFC 9111 §5.2.1.5: a request's no-store forbids storing.
		{http.MethodGet, []string{"Cache-Control: no-store"}, false},
		{http.MethodGet, []string{"Cache-Control: No-Store"}, false},
		{http.MethodGet, []string{"Cache-Control: max-age=60", "Cache-Control: no-store"}, false},
		{http.MethodHead, nil, false},
		{http.MethodPost, nil, false},
		{http.MethodPut, nil, false},
	} {
		req := requestWith(c.method, c.lines...)
		if got := RequestUsesCache(req); got != c.want {
			t.Errorf("requestUsesCache(%s %q) = %v, want %v", c.method, c.lines, got, c.want)
		}
	}
}

func TestStorable(t *testing.T) {
	const fresh = "Cache-Control: max-age=60"
	for _, c := range []struct {
		name   string
		status int
		req    []string
		resp   []string
		want   bool
	}{
		{"200", 200, nil, []string{fresh}, true},
		{"206", 206, nil, []string{fresh}, true},
		{"204", 204, nil, []string{fresh}, false},
		{"301", 301, nil, []string{fresh}, false},
		{"304", 304, nil, []string{fresh}, false},
		{"404", 404, nil, []string{fresh}, false},
		{"500", 500, nil, []string{fresh}, false},

		// RFC 9111 §3: no-store and private forbid a shared cache to store.
		{"no-store", 200, nil, []string{"Cache-Control: max-age=60, no-store"}, false},
		{"No-Store", 200, nil, []string{"Cache-Control: No-Store"}, false},
		{"private", 200, nil, []string{"Cache-Control: private, max-age=60"}, false},
		{"private with fields", 200, nil, []string{`Cache-Control: private="Set-Cookie", max-age=60`}, false},
		{"no-store on second line", 200, nil, []string{fresh, "Cache-Control: no-store"}, false},

		// RFC 9111 §4.1: Vary: * never matches a later request.
		{"vary star", 200, nil, []string{fresh, "Vary: *"}, false},
		{"vary star in list", 200, nil, []string{fresh, "Vary: Accept-Encoding, *"}, false},
		{"vary star on second line", 200, nil, []string{fresh, "Vary: Accept-Encoding", "Vary: *"}, false},
		{"vary field", 200, nil, []string{fresh, "Vary: Accept-Encoding"}, true},

		// RFC 9111 §3.5: Authorization only with public, s-maxage or must-revalidate.
		{"authorization", 200, []string{"Authorization: Bearer x"}, []string{fresh}, false},
		{"authorization etag only", 200, []string{"Authorization: Bearer x"}, []string{`ETag: "a"`}, false},
		{"authorization public", 200, []string{"Authorization: Bearer x"}, []string{"Cache-Control: public, max-age=60"}, true},
		{"authorization s-maxage", 200, []string{"Authorization: Bearer x"}, []string{"Cache-Control: s-maxage=60"}, true},
		{"authorization must-revalidate", 200, []string{"Authorization: Bearer x"}, []string{"Cache-Control: must-revalidate, max-age=60"}, true},
		{"authorization on 206", 206, []string{"Authorization: Bearer x"}, []string{fresh}, false},

		// Ranges of an encoded body are never spliced.
		{"206 content-encoding", 206, nil, []string{fresh, "Content-Encoding: gzip"}, false},
		{"200 content-encoding", 200, nil, []string{fresh, "Content-Encoding: gzip"}, true},

		// Regression: a 200 with Content-Range answering a forwarded Range
		// was stored as the complete file. RFC 9110 §14.4: Content-Range
		// means something in 206 and 416 only.
		{"200 content-range", 200, nil, []string{fresh, "Content-Range: bytes 0-999/2097152"}, false},
		{"200 content-range, whole", 200, nil, []string{fresh, "Content-Range: bytes 0-999/1000"}, false},
		{"200 content-range, malformed", 200, nil, []string{fresh, "Content-Range: junk"}, false},
		{"206 content-range", 206, nil, []string{fresh, "Content-Range: bytes 0-999/2097152"}, true},

		// Something to decide freshness or to revalidate with.
		{"nothing", 200, nil, nil, false},
		{"content-type only", 200, nil, []string{"Content-Type: text/plain", "Date: " + httpDate(ruleT0)}, false},
		{"public only", 200, nil, []string{"Cache-Control: public"}, false},
		{"etag", 200, nil, []string{`ETag: "a"`}, true},
		{"weak etag", 200, nil, []string{`ETag: W/"a"`}, true},
		{"last-modified", 200, nil, []string{"Last-Modified: " + httpDate(ruleLM)}, true},
		{"expires", 200, nil, []string{"Date: " + httpDate(ruleT0), "Expires: " + httpDate(ruleT0.Add(time.Hour))}, true},
		{"invalid expires", 200, nil, []string{"Expires: 0"}, true}, // RFC 9111 §5.3: stored, already expired
		{"no-cache", 200, nil, []string{"Cache-Control: no-cache"}, true},
		{"s-maxage", 200, nil, []string{"Cache-Control: s-maxage=0"}, true},
		// Regression: storable counted any ETag field as a validator, but validatorOf
		// drops one that is not an entity-tag (RFC 9110 §8.8.3), so this
		// entry has nothing to decide freshness with and nothing to
		// revalidate with (canRevalidate is false): it is stored, never
		// fresh and never revalidatable, against storable's own contract.
		{"invalid etag only", 200, nil, []string{"ETag: not-quoted"}, false},
	} {
		req := getRequest(c.req...)
		resp := &http.Response{StatusCode: c.status, Header: headerOf(c.resp...), Request: req}
		if got := Storable(req, resp); got != c.want {
			t.Errorf("%s: storable(%q, %d %q) = %v, want %v", c.name, c.req, c.status, c.resp, got, c.want)
		}
	}
}

func TestVaryNames(t *testing.T) {
	for _, c := range []struct {
		lines []string
		want  []string
	}{
		{nil, nil},
		{[]string{"Vary: "}, nil},
		{[]string{"Vary: ,, ,"}, nil},
		{[]string{"Vary: accept-encoding"}, []string{"Accept-Encoding"}},
		{[]string{"Vary:  Accept-Encoding ,\taccept-language "}, []string{"Accept-Encoding", "Accept-Language"}},
		{[]string{"Vary: Accept-Encoding", "Vary: User-Agent"}, []string{"Accept-Encoding", "User-Agent"}},
		{[]string{"Vary: *"}, []string{"*"}},
	} {
		h := headerOf(c.lines...)
		if got := varyNames(h); !reflect.DeepEqual(got, c.want) {
			t.Errorf("varyNames(%q) = %q, want %q", h.Values("Vary"), got, c.want)
		}
	}
}

func TestSelectingHeader(t *testing.T) {
	for _, c := range []struct {
		name string
		req  []string
		resp []string
		want map[string][]string
	}{
		{"no vary", []string{"Accept-Language: fr"}, nil, nil},
		{"one field", []string{"Accept-Language: fr"}, []string{"Vary: accept-language"},
			map[string][]string{"Accept-Language": {"fr"}}},
		// RFC 9111 §4.1: whitespace and line folding may be normalized.
		{"normalized", []string{"Accept-Language:  fr ,de", "Accept-Language: en"}, []string{"Vary: Accept-Language"},
			map[string][]string{"Accept-Language": {"fr", "de", "en"}}},
		{"absent field", nil, []string{"Vary: Accept-Encoding"},
			map[string][]string{"Accept-Encoding": nil}},
		{"two fields", []string{"Accept-Encoding: gzip", "User-Agent: curl"}, []string{"Vary: Accept-Encoding, User-Agent"},
			map[string][]string{"Accept-Encoding": {"gzip"}, "User-Agent": {"curl"}}},
	} {
		got := SelectingHeader(headerOf(c.req...), headerOf(c.resp...))
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: selectingHeader(%q, %q) = %q, want %q", c.name, c.req, c.resp, got, c.want)
		}
	}
}

func TestVariantMatches(t *testing.T) {
	for _, c := range []struct {
		name   string
		vary   string   // the stored response's Vary
		stored []string // the request that was stored with it
		req    []string // the new request
		want   bool
	}{
		{"no vary", "", []string{"Accept-Language: fr"}, []string{"Accept-Language: de"}, true},
		{"same", "Accept-Language", []string{"Accept-Language: fr"}, []string{"Accept-Language: fr"}, true},
		{"different", "Accept-Language", []string{"Accept-Language: fr"}, []string{"Accept-Language: de"}, false},
		{"name case", "accept-language", []string{"Accept-Language: fr"}, []string{"Accept-Language: fr"}, true},
		// RFC 9111 §4.1: whitespace and several lines normalize away.
		{"whitespace", "Accept-Language", []string{"Accept-Language: fr,de"}, []string{"Accept-Language:  fr , de "}, true},
		{"lines", "Accept-Language", []string{"Accept-Language: fr, de"}, []string{"Accept-Language: fr", "Accept-Language: de"}, true},
		{"empty elements", "Accept-Language", []string{"Accept-Language: fr, de"}, []string{"Accept-Language: ,fr,, de,"}, true},
		{"order", "Accept-Language", []string{"Accept-Language: fr, de"}, []string{"Accept-Language: de, fr"}, false},
		{"value case", "Accept-Language", []string{"Accept-Language: fr"}, []string{"Accept-Language: FR"}, false},
		{"absent in both", "Accept-Encoding", nil, nil, true},
		{"absent, empty", "Accept-Encoding", nil, []string{"Accept-Encoding: "}, true},
		{"absent, then present", "Accept-Encoding", nil, []string{"Accept-Encoding: gzip"}, false},
		{"present, then absent", "Accept-Encoding", []string{"Accept-Encoding: gzip"}, nil, false},
		{"two fields, one differs", "Accept-Encoding, User-Agent",
			[]string{"Accept-Encoding: gzip", "User-Agent: a"}, []string{"Accept-Encoding: gzip", "User-Agent: b"}, false},
		{"two fields, same", "Accept-Encoding, User-Agent",
			[]string{"Accept-Encoding: gzip", "User-Agent: a"}, []string{"User-Agent: a", "Accept-Encoding: gzip"}, true},
	} {
		resp := http.Header{}
		if c.vary != "" {
			resp.Set("Vary", c.vary)
		}
		sel := SelectingHeader(headerOf(c.stored...), resp)
		if got := VariantMatches(resp, sel, headerOf(c.req...)); got != c.want {
			t.Errorf("%s: variantMatches(Vary %q, %q, %q) = %v, want %v", c.name, c.vary, c.stored, c.req, got, c.want)
		}
	}
}

func TestValidETag(t *testing.T) {
	for _, c := range []struct {
		tag  string
		want bool
	}{
		{`"abc"`, true},
		{`W/"abc"`, true},
		{`""`, true},
		{`W/""`, true},
		{"\"!#~\"", true},      // etagc edges: %x21, %x23, %x7E
		{`"a,b"`, true},        // a comma is an etagc
		{"\"\xc3\xa9\"", true}, // obs-text
		{"\"\x80\xff\"", true}, // obs-text edges
		{`abc`, false},         // unquoted
		{`"abc`, false},        // no closing quote
		{`abc"`, false},        // no opening quote
		{`"`, false},           // one quote
		{``, false},            // empty
		{`W/`, false},          // weak indicator alone
		{`W/abc`, false},       // weak, unquoted
		{`w/"abc"`, false},     // the weak indicator is case-sensitive (%s"W/")
		{`W/W/"abc"`, false},   // one weak indicator only
		{`"a b"`, false},       // SP is not an etagc
		{"\"a\tb\"", false},    // HTAB neither
		{`"a"b"`, false},       // no DQUOTE inside
		{"\"a\x7fb\"", false},  // DEL
		{"\"a\x00b\"", false},  // NUL
		{` "abc"`, false},      // no surrounding whitespace (validatorOf trims)
		{`"abc" `, false},
		{`"a", "b"`, false}, // a list is not one tag
		{`"` + strings.Repeat("x", 1022) + `"`, true},  // 1024 bytes: our bound
		{`"` + strings.Repeat("x", 1023) + `"`, false}, // 1025 bytes
	} {
		if got := validETag(c.tag); got != c.want {
			t.Errorf("validETag(%q) = %v, want %v", c.tag, got, c.want)
		}
	}
}

// showValidator formats v for test messages, times as HTTP dates.
func showValidator(v Validator) string {
	date := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return httpDate(t)
	}
	return fmt.Sprintf("validator{etag %s weak %v last-modified %s date %s}", v.etag, v.weak, date(v.lastModified), date(v.date))
}

// equalValidators compares validators, times by instant.
func equalValidators(a, b Validator) bool {
	return a.etag == b.etag && a.weak == b.weak && a.lastModified.Equal(b.lastModified) && a.date.Equal(b.date)
}

func TestValidatorOf(t *testing.T) {
	for _, c := range []struct {
		lines []string
		want  Validator
	}{
		{nil, Validator{}},
		{[]string{`ETag: "a"`}, Validator{etag: `"a"`}},
		{[]string{`ETag: W/"a"`}, Validator{etag: `W/"a"`, weak: true}},
		{[]string{`ETag:   "a"  `}, Validator{etag: `"a"`}},
		{[]string{`ETag: a`}, Validator{}},
		{[]string{`ETag: W/a`}, Validator{}},
		{[]string{`ETag: "a b"`}, Validator{}},
		{[]string{`ETag: "a"`, `ETag: "b"`}, Validator{etag: `"a"`}},
		{[]string{"Last-Modified: " + httpDate(ruleLM), "Date: " + httpDate(ruleT0)},
			Validator{lastModified: ruleLM, date: ruleT0}},
		// RFC 9110 §5.6.7: recipients accept the obsolete date formats.
		{[]string{"Last-Modified: " + ruleLM.Format(time.RFC850), "Date: " + ruleT0.Format(time.ANSIC)},
			Validator{lastModified: ruleLM, date: ruleT0}},
		{[]string{"Last-Modified: yesterday", "Date: now"}, Validator{}},
		{[]string{`ETag: W/"a"`, "Last-Modified: " + httpDate(ruleLM), "Date: " + httpDate(ruleT0)},
			Validator{etag: `W/"a"`, weak: true, lastModified: ruleLM, date: ruleT0}},
	} {
		if got := ValidatorOf(headerOf(c.lines...)); !equalValidators(got, c.want) {
			t.Errorf("validatorOf(%q) = %s, want %s", c.lines, showValidator(got), showValidator(c.want))
		}
	}
}

// Validators used by the tables below.
var (
	vStrong     = Validator{etag: `"v1"`, lastModified: ruleLM, date: ruleT0}
	vStrongOnly = Validator{etag: `"v1"`}
	vWeak       = Validator{etag: `W/"v1"`, weak: true}
	vWeakDate   = Validator{etag: `W/"v1"`, weak: true, lastModified: ruleLM, date: ruleT0}
	vDate       = Validator{lastModified: ruleLM, date: ruleT0}                       // strong Last-Modified
	vDateWeak   = Validator{lastModified: ruleLM, date: ruleLM.Add(30 * time.Second)} // too close to Date
	vNone       = Validator{}
	vDateOnly   = Validator{date: ruleT0}
)

func TestStrongETag(t *testing.T) {
	for _, c := range []struct {
		v    Validator
		want string
	}{
		{vStrong, `"v1"`},
		{vWeak, ""},
		{vWeakDate, ""},
		{vDate, ""},
		{vNone, ""},
	} {
		if got := c.v.strongETag(); got != c.want {
			t.Errorf("%s.strongETag() = %q, want %q", showValidator(c.v), got, c.want)
		}
	}
}

func TestStrongDate(t *testing.T) {
	for _, c := range []struct {
		name         string
		lastModified time.Time
		date         time.Time
		want         bool
	}{
		// RFC 9110 §8.8.2.2: Date at least 60 s after Last-Modified.
		{"60s", ruleLM, ruleLM.Add(60 * time.Second), true},
		{"1h", ruleLM, ruleLM.Add(time.Hour), true},
		{"59s", ruleLM, ruleLM.Add(59 * time.Second), false},
		{"59.999s", ruleLM, ruleLM.Add(60*time.Second - time.Millisecond), false},
		{"equal", ruleLM, ruleLM, false},
		{"date before", ruleLM, ruleLM.Add(-time.Hour), false},
		{"no last-modified", time.Time{}, ruleT0, false},
		{"no date", ruleLM, time.Time{}, false},
	} {
		v := Validator{lastModified: c.lastModified, date: c.date}
		if got := v.strongDate(); got != c.want {
			t.Errorf("%s: strongDate(Last-Modified %v, Date %v) = %v, want %v", c.name, c.lastModified, c.date, got, c.want)
		}
	}
}

func TestResumable(t *testing.T) {
	for _, c := range []struct {
		name string
		v    Validator
		want bool
	}{
		{"strong etag", vStrongOnly, true},
		{"strong etag and date", vStrong, true},
		{"strong date", vDate, true},
		{"weak etag", vWeak, false},
		{"weak date", vDateWeak, false},
		{"none", vNone, false},
		{"date only", vDateOnly, false},
		// Regression: resumable said yes for a weak ETag beside a strong
		// Last-Modified, but no later response of the same version can pass
		// sameVersion (it carries the weak tag, and sameVersion wants no ETag
		// at all), and the If-Range we would send is a date although the
		// representation has an entity tag, which RFC 9110 §13.1.5 forbids.
		// Every refill or resume of such an entry costs a request and fails.
		{"weak etag and strong date", vWeakDate, false},
	} {
		if got := c.v.Resumable(); got != c.want {
			t.Errorf("%s: %s.resumable() = %v, want %v", c.name, showValidator(c.v), got, c.want)
		}
	}
}

func TestSameVersion(t *testing.T) {
	later := ruleT0.Add(time.Hour)
	for _, c := range []struct {
		name string
		v, o Validator
		want bool
	}{
		// RFC 9110 §8.8.3.2: strong comparison, both tags strong and equal.
		{"same strong etag", vStrong, Validator{etag: `"v1"`, date: later}, true},
		{"same strong etag, other date", vStrongOnly, Validator{etag: `"v1"`, lastModified: ruleT0, date: later}, true},
		{"other strong etag", vStrong, Validator{etag: `"v2"`, lastModified: ruleLM, date: later}, false},
		{"now weak", vStrong, Validator{etag: `W/"v1"`, weak: true, date: later}, false},
		{"etag dropped", vStrong, Validator{lastModified: ruleLM, date: later}, false},
		{"weak, same weak", vWeak, vWeak, false},
		{"weak and strong date, identical", vWeakDate, vWeakDate, false},
		// A strong Last-Modified identifies a version when no ETag is involved.
		{"strong date, same", vDate, Validator{lastModified: ruleLM, date: later}, true},
		{"strong date, same, different zone", vDate, Validator{lastModified: ruleLM.In(time.FixedZone("X", 3600)), date: later}, true},
		{"strong date, modified", vDate, Validator{lastModified: ruleLM.Add(time.Second), date: later}, false},
		{"strong date, now with etag", vDate, Validator{etag: `"v1"`, lastModified: ruleLM, date: later}, false},
		{"strong date, no last-modified", vDate, Validator{date: later}, false},
		{"weak date, same", vDateWeak, vDateWeak, false},
		{"none", vNone, vNone, false},
		// Regression: a 206 with another Content-Encoding was spliced.
		{"same etag, other encoding", vStrong, Validator{etag: `"v1"`, encoding: "gzip"}, false},
		{"same date, other encoding", vDate, Validator{lastModified: ruleLM, encoding: "br"}, false},
		{"same etag, other type", Validator{etag: `"v1"`, ctype: "text/plain"}, Validator{etag: `"v1"`, ctype: "text/html"}, false},
		{"same etag and encoding", Validator{etag: `"v1"`, encoding: "gzip"}, Validator{etag: `"v1"`, encoding: "gzip"}, true},
	} {
		if got := c.v.SameVersion(c.o); got != c.want {
			t.Errorf("%s: %s.sameVersion(%s) = %v, want %v", c.name, showValidator(c.v), showValidator(c.o), got, c.want)
		}
	}
}

// TestSelectedBy: a 304 updates the stored response only when the
// validators it carries are the stored ones (RFC 9111 §4.3.4).
// Regression: a 304 with another ETag overwrote the stored validator.
func TestSelectedBy(t *testing.T) {
	later := ruleT0.Add(time.Hour)
	for _, c := range []struct {
		name   string
		stored Validator
		n      Validator // the 304's
		want   bool
	}{
		{"same strong etag", vStrong, Validator{etag: `"v1"`, date: later}, true},
		{"same strong etag and date", vStrong, Validator{etag: `"v1"`, lastModified: ruleLM, date: later}, true},
		{"other strong etag", vStrong, Validator{etag: `"v2"`, date: later}, false},
		{"other strong etag, same date", vStrong, Validator{etag: `"v2"`, lastModified: ruleLM, date: later}, false},
		{"same etag, other date", vStrong, Validator{etag: `"v1"`, lastModified: ruleLM.Add(time.Second), date: later}, false},
		// A strong tag selects only a stored response with the same strong tag.
		{"strong tag for a weak one", vWeak, Validator{etag: `"v1"`, date: later}, false},
		{"strong tag, none stored", vDate, Validator{etag: `"v1"`, date: later}, false},
		// Weak tags select by weak comparison.
		{"weak tag, same weak", vWeak, Validator{etag: `W/"v1"`, weak: true}, true},
		{"weak tag for a strong one", vStrongOnly, Validator{etag: `W/"v1"`, weak: true}, true},
		{"other weak tag", vWeak, Validator{etag: `W/"v2"`, weak: true}, false},
		{"weak tag, none stored", vDate, Validator{etag: `W/"v1"`, weak: true}, false},
		// Last-Modified must be the stored one.
		{"same date", vDate, Validator{lastModified: ruleLM, date: later}, true},
		{"same date, other zone", vDate, Validator{lastModified: ruleLM.In(time.FixedZone("X", 3600))}, true},
		{"other date", vDate, Validator{lastModified: ruleLM.Add(time.Hour), date: later}, false},
		{"date, none stored", vStrongOnly, Validator{lastModified: ruleLM, date: later}, false},
		// No validator contradicts nothing.
		{"no validators", vStrong, Validator{date: later}, true},
		{"no validators, none stored", vNone, vNone, true},
	} {
		if got := c.stored.SelectedBy(c.n); got != c.want {
			t.Errorf("%s: %s.selectedBy(%s) = %v, want %v", c.name, showValidator(c.stored), showValidator(c.n), got, c.want)
		}
	}
}

// TestSameMetadata: a response stating another content coding or media
// type than the stored one is another representation (RFC 9110 §8.3,
// §8.4); one that omits them says nothing (RFC 9110 §15.3.7).
func TestSameMetadata(t *testing.T) {
	for _, c := range []struct {
		name             string
		stored, response Validator
		want             bool
	}{
		{"both none", Validator{}, Validator{}, true},
		{"encoding omitted", Validator{encoding: "gzip"}, Validator{}, true},
		{"same encoding", Validator{encoding: "gzip"}, Validator{encoding: "gzip"}, true},
		{"encoding case", Validator{encoding: "gzip"}, Validator{encoding: "GZip"}, true},
		{"identity is none", Validator{}, Validator{encoding: "identity"}, true},
		{"identity in a list", Validator{encoding: "gzip"}, Validator{encoding: "identity, gzip"}, true},
		{"list spacing", Validator{encoding: "gzip,br"}, Validator{encoding: " gzip , br"}, true},
		{"encoding added", Validator{}, Validator{encoding: "gzip"}, false},
		{"other encoding", Validator{encoding: "gzip"}, Validator{encoding: "br"}, false},
		{"encoding order", Validator{encoding: "gzip, br"}, Validator{encoding: "br, gzip"}, false},
		{"encoding dropped to identity", Validator{encoding: "gzip"}, Validator{encoding: "identity"}, false},
		{"type omitted", Validator{ctype: "text/plain"}, Validator{}, true},
		{"no stored type", Validator{}, Validator{ctype: "text/plain"}, true},
		{"same type", Validator{ctype: "text/plain; charset=utf-8"}, Validator{ctype: "text/plain; charset=utf-8"}, true},
		{"type case and spacing", Validator{ctype: "text/plain; charset=utf-8"}, Validator{ctype: "Text/Plain;Charset=UTF-8"}, true},
		{"other type", Validator{ctype: "application/zip"}, Validator{ctype: "text/html"}, false},
		{"other charset", Validator{ctype: "text/plain; charset=utf-8"}, Validator{ctype: "text/plain; charset=latin1"}, false},
		{"parameter added", Validator{ctype: "text/plain"}, Validator{ctype: "text/plain; charset=utf-8"}, false},
		{"unparsable, identical", Validator{ctype: "junk;;"}, Validator{ctype: "junk;;"}, true},
		{"unparsable, different", Validator{ctype: "junk;;"}, Validator{ctype: "junk; ;"}, false},
	} {
		if got := c.stored.sameMetadata(c.response); got != c.want {
			t.Errorf("%s: validator{encoding %q type %q}.sameMetadata(encoding %q type %q) = %v, want %v",
				c.name, c.stored.encoding, c.stored.ctype, c.response.encoding, c.response.ctype, got, c.want)
		}
	}
}

func TestValidatorIfRange(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	for _, c := range []struct {
		name string
		v    Validator
		want string
	}{
		{"strong etag", vStrongOnly, `"v1"`},
		{"strong etag over date", vStrong, `"v1"`},
		{"strong date", vDate, httpDate(ruleLM)},
		{"strong date, other zone", Validator{lastModified: ruleLM.In(cet), date: ruleT0.In(cet)}, httpDate(ruleLM)},
		// RFC 9110 §13.1.5: never a weak tag, never a weak date.
		{"weak etag", vWeak, ""},
		{"weak date", vDateWeak, ""},
		{"none", vNone, ""},
		// Regression: ifRange returned the Last-Modified date for a representation
		// that has a (weak) entity tag. RFC 9110 §13.1.5: "A client MUST NOT
		// generate an If-Range header field containing an HTTP-date unless
		// the client has no entity tag for the corresponding representation
		// and the date is a strong validator". serve.go sends this upstream
		// on a refill.
		{"weak etag and strong date", vWeakDate, ""},
	} {
		if got := c.v.IfRange(); got != c.want {
			t.Errorf("%s: %s.ifRange() = %q, want %q", c.name, showValidator(c.v), got, c.want)
		}
	}
}

func TestSetContinueConditions(t *testing.T) {
	for _, c := range []struct {
		name string
		v    Validator
		want http.Header
	}{
		{"strong etag", vStrong, http.Header{"If-Match": {`"v1"`}}},
		{"strong date", vDate, http.Header{"If-Unmodified-Since": {httpDate(ruleLM)}}},
		// If-Match compares strongly (RFC 9110 §13.1.1): a weak tag would
		// always fail, so the date asks instead.
		{"weak etag and strong date", vWeakDate, http.Header{"If-Unmodified-Since": {httpDate(ruleLM)}}},
		{"other zone", Validator{lastModified: ruleLM.In(time.FixedZone("X", -7200)), date: ruleT0}, http.Header{"If-Unmodified-Since": {httpDate(ruleLM)}}},
	} {
		h := http.Header{"Range": {"bytes=10-"}}
		c.v.SetContinueConditions(h)
		c.want.Set("Range", "bytes=10-")
		if !reflect.DeepEqual(h, c.want) {
			t.Errorf("%s: setContinueConditions(%s) = %v, want %v", c.name, showValidator(c.v), h, c.want)
		}
	}
}

func TestSetRevalidateConditions(t *testing.T) {
	for _, c := range []struct {
		name string
		v    Validator
		want http.Header
	}{
		// RFC 9111 §4.3.1: send the entity tag and the Last-Modified date.
		{"etag and date", vStrong, http.Header{"If-None-Match": {`"v1"`}, "If-Modified-Since": {httpDate(ruleLM)}}},
		{"etag", vStrongOnly, http.Header{"If-None-Match": {`"v1"`}}},
		// If-None-Match compares weakly (RFC 9110 §13.1.2): a weak tag is fine.
		{"weak etag", vWeak, http.Header{"If-None-Match": {`W/"v1"`}}},
		{"weak date", vDateWeak, http.Header{"If-Modified-Since": {httpDate(ruleLM)}}},
		{"other zone", Validator{lastModified: ruleLM.In(time.FixedZone("X", 5*3600))}, http.Header{"If-Modified-Since": {httpDate(ruleLM)}}},
		{"none", vNone, http.Header{}},
		{"date only", vDateOnly, http.Header{}},
	} {
		h := http.Header{}
		c.v.SetRevalidateConditions(h)
		if !reflect.DeepEqual(h, c.want) {
			t.Errorf("%s: setRevalidateConditions(%s) = %v, want %v", c.name, showValidator(c.v), h, c.want)
		}
	}
}

func TestCanRevalidate(t *testing.T) {
	for _, c := range []struct {
		v    Validator
		want bool
	}{
		{vStrong, true},
		{vStrongOnly, true},
		{vWeak, true},
		{vDate, true},
		{vDateWeak, true},
		{vNone, false},
		{vDateOnly, false},
	} {
		if got := c.v.CanRevalidate(); got != c.want {
			t.Errorf("%s.canRevalidate() = %v, want %v", showValidator(c.v), got, c.want)
		}
	}
}
