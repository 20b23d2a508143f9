package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/resumeproxy/resumeproxy/proxy/policy"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// Validators of the overlap tests, as policy's table tests build them: an
// instant and a Last-Modified well before it.
var (
	overlapT0   = time.Date(2025, time.March, 1, 12, 0, 0, 0, time.UTC)
	overlapLM   = overlapT0.Add(-10 * time.Hour)
	vStrong     = validatorWith(`"v1"`, overlapLM, overlapT0)
	vStrongOnly = validatorWith(`"v1"`, time.Time{}, time.Time{})
	vWeakDate   = validatorWith(`W/"v1"`, overlapLM, overlapT0)
	vDate       = validatorWith("", overlapLM, overlapT0)                     // strong Last-Modified
	vDateWeak   = validatorWith("", overlapLM, overlapLM.Add(30*time.Second)) // too close to Date
)

// validatorWith is the validator of a response with these fields; an empty
// etag or a zero time leaves the field out.
func validatorWith(etag string, lastModified, date time.Time) policy.Validator {
	h := http.Header{}
	if etag != "" {
		h.Set("ETag", etag)
	}
	if !lastModified.IsZero() {
		h.Set("Last-Modified", lastModified.UTC().Format(http.TimeFormat))
	}
	if !date.IsZero() {
		h.Set("Date", date.UTC().Format(http.TimeFormat))
	}
	return policy.ValidatorOf(h)
}

// showValidator formats v for test messages.
func showValidator(v policy.Validator) string { return fmt.Sprintf("%+v", v) }

func setOf(rs ...rangeutil.Range) rangeutil.Set {
	var s rangeutil.Set
	for _, r := range rs {
		s.Insert(r)
	}
	return s
}

func TestOverlapStart(t *testing.T) {
	const k = 1 << 10
	r := func(a, b int64) rangeutil.Range { return rangeutil.Range{Start: a, End: b} }
	for _, c := range []struct {
		name string
		v    policy.Validator
		have rangeutil.Set
		pos  int64
		want int64
	}{
		{"strong etag", vStrong, setOf(r(0, 1000*k)), 1000 * k, 1000 * k},
		{"strong etag only", vStrongOnly, setOf(r(0, 1000*k)), 1000 * k, 1000 * k},
		{"date, plenty stored", vDate, setOf(r(0, 1000*k)), 1000 * k, 1000*k - maxOverlap},
		{"date, little stored", vDate, setOf(r(0, 40*k)), 40 * k, 0},
		{"date, exactly the overlap stored", vDate, setOf(r(0, maxOverlap)), maxOverlap, 0},
		{"date, run starts late", vDate, setOf(r(0, 10*k), r(500*k, 530*k)), 530 * k, 500 * k},
		{"date, nothing stored before", vDate, setOf(r(600*k, 700*k)), 500 * k, 500 * k},
		{"date, empty", vDate, rangeutil.Set{}, 0, 0},
		{"date, stored after only", vDate, setOf(r(10, 20)), 0, 0},
		// Only date-validated versions: a weak date never resumes, and a
		// weak ETag beside a date makes the date unusable (RFC 9110 §13.1.5).
		{"weak date", vDateWeak, setOf(r(0, 1000*k)), 1000 * k, 1000 * k},
		{"weak etag and date", vWeakDate, setOf(r(0, 1000*k)), 1000 * k, 1000 * k},
	} {
		if got := overlapStart(c.v, c.have, c.pos); got != c.want {
			t.Errorf("%s: overlapStart(%s, %v, %d) = %d, want %d", c.name, showValidator(c.v), c.have, c.pos, got, c.want)
		}
	}
}

func TestCheckOverlap(t *testing.T) {
	stored := []byte("0123456789abcdef")
	for _, c := range []struct {
		name    string
		body    string // what upstream sends from r.Start
		r       rangeutil.Range
		wantErr error // nil, errChanged, or io.ErrUnexpectedEOF
		rest    string
	}{
		{"same", "456789", rangeutil.Range{Start: 4, End: 8}, nil, "89"},
		{"empty overlap", "xyz", rangeutil.Range{Start: 4, End: 4}, nil, "xyz"},
		{"a middle byte differs", "4X6789", rangeutil.Range{Start: 4, End: 8}, errChanged, ""},
		{"first byte differs", "X56789", rangeutil.Range{Start: 4, End: 8}, errChanged, ""},
		{"last byte differs", "456X89", rangeutil.Range{Start: 4, End: 8}, errChanged, ""},
		{"differs after the overlap", "4567X9", rangeutil.Range{Start: 4, End: 8}, nil, "X9"},
		{"short body", "45", rangeutil.Range{Start: 4, End: 8}, io.ErrUnexpectedEOF, ""},
	} {
		body := bytes.NewReader([]byte(c.body))
		err := checkOverlap(body, bytes.NewReader(stored), c.r)
		if (err == nil) != (c.wantErr == nil) || (c.wantErr != nil && !errors.Is(err, c.wantErr)) {
			t.Errorf("%s: checkOverlap(%q, %v) = %v, want %v", c.name, c.body, c.r, err, c.wantErr)
			continue
		}
		if rest, _ := io.ReadAll(body); err == nil && string(rest) != c.rest {
			t.Errorf("%s: after checkOverlap the body holds %q, want %q", c.name, rest, c.rest)
		}
	}
}
