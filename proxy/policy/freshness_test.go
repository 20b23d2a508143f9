package policy

import (
	"testing"
	"time"
)

func TestFreshnessLifetime(t *testing.T) {
	date := "Date: " + httpDate(ruleT0)
	expires := func(d time.Duration) string { return "Expires: " + httpDate(ruleT0.Add(d)) }
	lastModified := func(d time.Duration) string { return "Last-Modified: " + httpDate(ruleT0.Add(-d)) }
	for _, c := range []struct {
		name   string
		lines  []string
		want   time.Duration
		wantOK bool
	}{
		{"nothing", nil, 0, false},
		{"date only", []string{date}, 0, false},
		{"etag only", []string{date, `ETag: "a"`}, 0, false},
		{"public only", []string{date, "Cache-Control: public"}, 0, false},
		{"must-revalidate only", []string{date, "Cache-Control: must-revalidate"}, 0, false},

		// RFC 9111 §5.2.2.4: no-cache stores but revalidates every use, and
		// §4.2.1: the most restrictive of conflicting directives wins.
		{"no-cache", []string{date, "Cache-Control: no-cache"}, 0, true},
		{"no-cache over max-age", []string{date, "Cache-Control: max-age=600, no-cache"}, 0, true},
		{"no-cache over s-maxage", []string{date, "Cache-Control: s-maxage=600", "Cache-Control: No-Cache"}, 0, true},
		{"no-cache with fields", []string{date, `Cache-Control: no-cache="Set-Cookie", max-age=600`}, 0, true},

		// RFC 9111 §4.2.1: s-maxage, then max-age, then Expires − Date.
		{"s-maxage", []string{date, "Cache-Control: s-maxage=30"}, 30 * time.Second, true},
		{"s-maxage over max-age", []string{date, "Cache-Control: s-maxage=30, max-age=600"}, 30 * time.Second, true},
		{"s-maxage over max-age, order", []string{date, "Cache-Control: max-age=600, s-maxage=30"}, 30 * time.Second, true},
		{"s-maxage over expires", []string{date, "Cache-Control: s-maxage=30", expires(time.Hour)}, 30 * time.Second, true},
		{"s-maxage larger", []string{date, "Cache-Control: s-maxage=600, max-age=30"}, 600 * time.Second, true},
		{"max-age", []string{date, "Cache-Control: max-age=600"}, 600 * time.Second, true},
		{"max-age=0", []string{date, "Cache-Control: max-age=0"}, 0, true},
		{"max-age over expires", []string{date, "Cache-Control: max-age=60", expires(time.Hour)}, time.Minute, true},
		{"max-age over heuristic", []string{date, "Cache-Control: max-age=60", lastModified(100 * time.Hour)}, time.Minute, true},
		{"max-age capped", []string{date, "Cache-Control: max-age=99999999999"}, maxDeltaSeconds, true},
		{"max-age without date", []string{"Cache-Control: max-age=60"}, time.Minute, true},
		{"expires", []string{date, expires(time.Hour)}, time.Hour, true},
		{"expires over heuristic", []string{date, expires(time.Hour), lastModified(100 * time.Hour)}, time.Hour, true},
		{"expires equal to date", []string{date, expires(0)}, 0, true},
		{"expires in the past", []string{date, expires(-time.Hour)}, 0, true},
		{"expires obsolete format", []string{date, "Expires: " + ruleT0.Add(time.Hour).Format(time.RFC850)}, time.Hour, true},
		// RFC 9111 §5.3: an invalid Expires, "0" above all, means already expired.
		{"expires 0", []string{date, "Expires: 0"}, 0, true},
		{"expires garbage", []string{date, "Expires: soon"}, 0, true},
		{"expires garbage over heuristic", []string{date, "Expires: -1", lastModified(100 * time.Hour)}, 0, true},

		// RFC 9111 §4.2.2: heuristic, 10% of Date − Last-Modified, capped at a day.
		{"heuristic", []string{date, lastModified(10 * time.Hour)}, time.Hour, true},
		{"heuristic with etag", []string{date, `ETag: "a"`, lastModified(10 * time.Hour)}, time.Hour, true},
		{"heuristic just under cap", []string{date, lastModified(239 * time.Hour)}, 239 * time.Hour / 10, true},
		{"heuristic at cap", []string{date, lastModified(240 * time.Hour)}, 24 * time.Hour, true},
		{"heuristic capped", []string{date, lastModified(30 * 24 * time.Hour)}, 24 * time.Hour, true},
		{"heuristic, modified at date", []string{date, lastModified(0)}, 0, false},
		{"heuristic, modified after date", []string{date, lastModified(-time.Hour)}, 0, false},
		{"heuristic without date", []string{lastModified(10 * time.Hour)}, 0, false},
		{"heuristic, garbage last-modified", []string{date, "Last-Modified: long ago"}, 0, false},
	} {
		got, ok := freshnessLifetime(headerOf(c.lines...))
		if got != c.want || ok != c.wantOK {
			t.Errorf("%s: freshnessLifetime(%q) = %v, %v, want %v, %v", c.name, c.lines, got, ok, c.want, c.wantOK)
		}
	}
}

// TestFreshnessLifetimeRepeatedDirective: a response naming its lifetime
// twice must not get the longer one.
func TestFreshnessLifetimeRepeatedDirective(t *testing.T) {
	date := "Date: " + httpDate(ruleT0)
	// Regression: parseCacheControl kept the last value of a repeated directive,
	// so freshnessLifetime uses the last max-age/s-maxage. RFC 9111 §4.2.1:
	// "When there is more than one value present for a given directive
	// (e.g., ... multiple Cache-Control: max-age directives), either the
	// first occurrence should be used or the response should be considered
	// stale." Either fix passes: we only ask for no more than the first.
	for _, c := range []struct {
		lines []string
		first time.Duration
	}{
		{[]string{date, "Cache-Control: max-age=60, max-age=86400"}, time.Minute},
		{[]string{date, "Cache-Control: max-age=60", "Cache-Control: max-age=86400"}, time.Minute},
		{[]string{date, "Cache-Control: s-maxage=0, s-maxage=86400"}, 0},
	} {
		got, _ := freshnessLifetime(headerOf(c.lines...))
		if got > c.first {
			t.Errorf("freshnessLifetime(%q) = %v, want at most %v (the first occurrence, or stale)", c.lines, got, c.first)
		}
	}
}

func TestCurrentAge(t *testing.T) {
	// Times relative to the response's arrival, resp = ruleT0.
	resp := ruleT0
	for _, c := range []struct {
		name  string
		lines []string
		req   time.Time // request_time
		now   time.Time
		want  time.Duration
	}{
		// RFC 9111 §4.2.3:
		//   apparent_age = max(0, response_time - date_value)
		//   corrected_age_value = age_value + (response_time - request_time)
		//   corrected_initial_age = max(apparent_age, corrected_age_value)
		//   current_age = corrected_initial_age + (now - response_time)
		{"just arrived", []string{"Date: " + httpDate(resp)}, resp, resp, 0},
		{"resident time", []string{"Date: " + httpDate(resp)}, resp, resp.Add(50 * time.Second), 50 * time.Second},
		{"age header", []string{"Date: " + httpDate(resp), "Age: 100"}, resp, resp.Add(50 * time.Second), 150 * time.Second},
		{"apparent age", []string{"Date: " + httpDate(resp.Add(-30*time.Second))}, resp, resp, 30 * time.Second},
		{"response delay", []string{"Date: " + httpDate(resp), "Age: 10"}, resp.Add(-5 * time.Second), resp, 15 * time.Second},
		{"response delay alone", []string{"Date: " + httpDate(resp)}, resp.Add(-5 * time.Second), resp, 5 * time.Second},
		{"apparent over corrected", []string{"Date: " + httpDate(resp.Add(-60*time.Second)), "Age: 10"}, resp.Add(-5 * time.Second), resp.Add(time.Second), 61 * time.Second},
		{"corrected over apparent", []string{"Date: " + httpDate(resp.Add(-10*time.Second)), "Age: 100"}, resp.Add(-5 * time.Second), resp.Add(time.Second), 106 * time.Second},
		// Regression (issue 9): the upstream's Age was dropped with the
		// stored header, so this response was 6 s old instead of 3601 s.
		{"upstream age kept", []string{"Date: " + httpDate(resp), "Age: 3595"}, resp, resp.Add(6 * time.Second), 3601 * time.Second},
		{"all four", []string{"Date: " + httpDate(resp.Add(-20*time.Second)), "Age: 30"}, resp.Add(-2 * time.Second), resp.Add(100 * time.Second), 132 * time.Second},
		{"date in the future", []string{"Date: " + httpDate(resp.Add(time.Hour))}, resp, resp.Add(time.Second), time.Second},
		{"no date", []string{"Age: 7"}, resp, resp, 7 * time.Second},
		{"bad date", []string{"Date: yesterday"}, resp, resp.Add(time.Second), time.Second},
		{"no headers", nil, resp, resp.Add(3 * time.Second), 3 * time.Second},
		{"now before response", []string{"Date: " + httpDate(resp)}, resp, resp.Add(-time.Hour), 0},
		{"request after response", []string{"Date: " + httpDate(resp)}, resp.Add(time.Hour), resp, 0},
		// RFC 9111 §5.1: an invalid Age is ignored.
		{"negative age", []string{"Date: " + httpDate(resp), "Age: -5"}, resp, resp, 0},
		{"garbage age", []string{"Date: " + httpDate(resp), "Age: old"}, resp, resp, 0},
		{"fractional age", []string{"Date: " + httpDate(resp), "Age: 1.5"}, resp, resp, 0},
		// RFC 9111 §1.2.2: an over-large Age is 2^31 s.
		{"large age", []string{"Date: " + httpDate(resp), "Age: 9999999999"}, resp, resp, maxDeltaSeconds},
		// Regression: an Age that overflows int64 failed strconv.ParseInt and counts
		// as 0, so a response an upstream cache calls ancient is fresh here.
		// RFC 9111 §1.2.2: a delta-seconds too large to represent MUST be
		// taken as 2^31 (or the greatest integer the cache can represent).
		{"overflowing age", []string{"Date: " + httpDate(resp), "Age: 99999999999999999999"}, resp, resp, maxDeltaSeconds},
	} {
		if got := CurrentAge(InitialAge(headerOf(c.lines...), c.req, resp), resp, c.now); got != c.want {
			t.Errorf("%s: currentAge(initialAge(%q, request %v, response %v), now %v) = %v, want %v",
				c.name, c.lines, c.req, resp, c.now, got, c.want)
		}
	}
}

func TestFresh(t *testing.T) {
	// The stored response arrived at ruleT0 with Date ruleT0 and is 100 s
	// fresh unless a row says otherwise.
	stored := []string{"Date: " + httpDate(ruleT0), "Cache-Control: max-age=100"}
	at := func(s int) time.Time { return ruleT0.Add(time.Duration(s) * time.Second) }
	for _, c := range []struct {
		name string
		req  []string
		resp []string // nil: stored
		now  time.Time
		want bool
	}{
		{"new", nil, nil, at(0), true},
		{"young", nil, nil, at(99), true},
		// RFC 9111 §4.2: fresh while freshness_lifetime > current_age.
		{"at lifetime", nil, nil, at(100), false},
		{"old", nil, nil, at(101), false},

		// RFC 9111 §5.2.1.4: the request's no-cache forbids a stored answer.
		{"request no-cache", []string{"Cache-Control: no-cache"}, nil, at(0), false},
		{"request No-Cache", []string{"Cache-Control: No-Cache"}, nil, at(0), false},
		// RFC 9111 §5.4: Pragma: no-cache counts only without Cache-Control.
		{"pragma", []string{"Pragma: no-cache"}, nil, at(0), false},
		{"pragma beside cache-control", []string{"Pragma: no-cache", "Cache-Control: max-age=1000"}, nil, at(0), true},
		{"other pragma", []string{"Pragma: x-ext"}, nil, at(0), true},
		// Regression: fresh compared the whole Pragma field with "no-cache", so a
		// list or another case is missed. RFC 9111 §5.4: Pragma =
		// 1#pragma-directive, and "When the Cache-Control header field is not
		// present in a request, caches MUST consider the no-cache request
		// pragma directive as having the same effect as if "Cache-Control:
		// no-cache" were present"; the ABNF literal "no-cache" is
		// case-insensitive (RFC 5234 §2.3).
		{"pragma list", []string{"Pragma: no-cache, x-ext"}, nil, at(0), false},
		{"pragma case", []string{"Pragma: No-Cache"}, nil, at(0), false},

		// RFC 9111 §5.2.1.1: the request's max-age bounds the age.
		{"request max-age above age", []string{"Cache-Control: max-age=60"}, nil, at(50), true},
		{"request max-age equal to age", []string{"Cache-Control: max-age=50"}, nil, at(50), true},
		{"request max-age below age", []string{"Cache-Control: max-age=30"}, nil, at(50), false},
		{"request max-age=0", []string{"Cache-Control: max-age=0"}, nil, at(1), false},
		{"request max-age garbage", []string{"Cache-Control: max-age=soon"}, nil, at(50), true},
		{"request max-age beyond lifetime", []string{"Cache-Control: max-age=1000"}, nil, at(150), false},

		{"age header", nil, []string{"Date: " + httpDate(ruleT0), "Cache-Control: max-age=100", "Age: 60"}, at(39), true},
		{"age header, stale", nil, []string{"Date: " + httpDate(ruleT0), "Cache-Control: max-age=100", "Age: 60"}, at(40), false},
		// Regression (issue 9): 3595 s into a 3600 s lifetime leaves 5 s.
		{"age near lifetime", nil, []string{"Date: " + httpDate(ruleT0), "Cache-Control: max-age=3600", "Age: 3595"}, at(4), true},
		{"age near lifetime, stale", nil, []string{"Date: " + httpDate(ruleT0), "Cache-Control: max-age=3600", "Age: 3595"}, at(5), false},
		{"response no-cache", nil, []string{"Date: " + httpDate(ruleT0), "Cache-Control: no-cache"}, at(0), false},
		{"no lifetime", nil, []string{"Date: " + httpDate(ruleT0), `ETag: "a"`}, at(0), false},
		{"expires", nil, []string{"Date: " + httpDate(ruleT0), "Expires: " + httpDate(at(100))}, at(99), true},
		{"heuristic", nil, []string{"Date: " + httpDate(ruleT0), "Last-Modified: " + httpDate(ruleT0.Add(-1000*time.Second))}, at(99), true},
		{"heuristic, stale", nil, []string{"Date: " + httpDate(ruleT0), "Last-Modified: " + httpDate(ruleT0.Add(-1000*time.Second))}, at(100), false},
		// Expires without Date is not tested here: the proxy adds Date to every
		// response it stores (RFC 9110 §6.6.1), so fresh never sees one.
	} {
		resp := stored
		if c.resp != nil {
			resp = c.resp
		}
		req := getRequest(c.req...)
		h := headerOf(resp...)
		if got := Fresh(req, h, CurrentAge(InitialAge(h, ruleT0, ruleT0), ruleT0, c.now)); got != c.want {
			t.Errorf("%s: fresh(%q, %q, now +%v) = %v, want %v", c.name, c.req, resp, c.now.Sub(ruleT0), got, c.want)
		}
	}
}
