package proxy

import (
	"errors"
	"net/http"
	"time"

	"github.com/resumeproxy/resumeproxy/cache"
	"github.com/resumeproxy/resumeproxy/proxy/policy"
	"github.com/resumeproxy/resumeproxy/rangeutil"
)

// This file holds the decisions of the request path, as pure functions of
// what is stored and what the upstream answered: serve.go carries them out.

// errRaced is returned by the steps of serveOnce that lost a race with
// another request on the same entry (the bytes arrived, or the version was
// replaced or dropped, while they looked): serve starts over, and finds
// the entry as it is now.
var errRaced = errors.New("proxy: raced with another request on the entry; start over")

// step is what to do with a request for a stored version.
type step int

const (
	// stepOtherVariant: the stored response was selected by other
	// request headers (Vary); it does not answer this request.
	stepOtherVariant step = iota
	// stepRefill: bytes the request needs are missing; ask the upstream
	// for them before sending a stored byte (DESIGN invariant 2).
	stepRefill
	// stepHit: everything needed is stored and fresh.
	stepHit
	// stepRevalidate: everything is stored but stale; ask the upstream
	// whether it is still current (RFC 9111 §4.3).
	stepRevalidate
	// stepPermit: everything is stored, but it was fetched with a
	// signature or credentials: the upstream must accept this client's
	// own request before it gets a stored byte (issue 10, point 2).
	stepPermit
)

// plan decides how to answer req from the stored version m at now, and
// which bytes of it the request needs. vouched is set when req carries a
// signature or credentials: for content named by a digest, those are for
// the upstream to judge before the client gets stored bytes (a forged
// token gets the upstream's refusal, not the blob).
func plan(req *http.Request, m cache.Meta, now time.Time, vouched bool) (step, rangeutil.Range) {
	if !policy.VariantMatches(m.Header, m.RequestHeader, req.Header) {
		return stepOtherVariant, rangeutil.Range{}
	}
	need := policy.ChooseRange(req, m.Size, policy.ValidatorOf(m.Header)).Range
	switch {
	case len(m.Ranges.Missing(need)) > 0:
		return stepRefill, need // the refill asks upstream with this client's request
	case m.Guarded, vouched && m.Digest != "":
		return stepPermit, need
	case m.Immutable: // it never changes: always fresh, whatever the client asks
		return stepHit, need
	case policy.Fresh(req, m.Header, policy.CurrentAge(m.InitialAge, m.ResponseTime, now)):
		return stepHit, need
	default:
		return stepRevalidate, need
	}
}

// refillOutcome is what the upstream's answer to a refill (a range request
// with If-Range for the first missing bytes of a stored version) means.
type refillOutcome int

const (
	// refillSplice: a 206 of the same version for the bytes asked: serve
	// the stored bytes, then these (after any overlap compares equal).
	refillSplice refillOutcome = iota
	// refillReplaced: a 200, a new version (or a server that ignores
	// Range): it replaces the stored one.
	refillReplaced
	// refillBroken: a 206 that may not be spliced (another version, a
	// total that differs, other bytes than asked): drop the entry and
	// fetch anew.
	refillBroken
	// refillSizeChanged: a 416: the stored length is wrong now; drop the
	// entry and fetch anew.
	refillSizeChanged
	// refillGone: a 404 or 410: pass it on and drop the entry.
	refillGone
	// refillPassOn: anything else (5xx, 403, ...): pass it on and keep the
	// stored bytes for a later request.
	refillPassOn
)

// classifyRefill reads the status and header of the upstream's answer to a
// refill that asked for ask of a stored version of size bytes and
// validator v. For refillBroken the error says why.
func classifyRefill(resp *http.Response, ask rangeutil.Range, size int64, v policy.Validator) (refillOutcome, error) {
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if err := checkPartial(resp, ask, size, v); err != nil {
			return refillBroken, err
		}
		return refillSplice, nil
	case http.StatusOK:
		return refillReplaced, nil
	case http.StatusRequestedRangeNotSatisfiable:
		return refillSizeChanged, nil
	case http.StatusNotFound, http.StatusGone:
		return refillGone, nil
	}
	return refillPassOn, nil
}
