package testorigin

import "time"

// A fault changes one response of one path. Faults are queued per path and
// consumed in order; each queue matches its own kind of response:
//
//   - failures (FailNext) match every request;
//   - body faults (DropAt, DropAfter, StallAt, ChangeVersionAt,
//     ReplaceContentAt, Drip) share one queue and match GET responses that
//     carry content (200 and 206);
//   - lies (LieContentRange) match 206 responses;
//   - NotModifiedWith matches GET requests for an existing resource, and
//     PartialAs200 and EncodeRanges share a queue that matches 206
//     responses (lies.go).
//
// So a single 206 response may consume one body fault and one lie.

// cutAction is what happens when a response reaches its cut offset.
type cutAction int

const (
	actNone          cutAction = iota // the response completes normally
	actDrop                           // flush, then close the connection
	actStall                          // flush, then hold until the client or origin goes away
	actChangeVersion                  // bump the resource's version, then drop
	actReplace                        // bump the content's version, keep the validators, then drop
)

// bodyFault is one queued DropAt, DropAfter, StallAt, ChangeVersionAt,
// ReplaceContentAt or Drip.
type bodyFault struct {
	action cutAction
	// at is the absolute file offset of the cut; when relative is set it is
	// instead a count of body bytes from the start of the response.
	at       int64
	relative bool
	// done, when non-nil, is closed when the response that took the fault
	// has ended (StallAt hands it to the test).
	done chan struct{}
	// drip paces the whole response (Drip); zero: full speed.
	drip drip
}

// drip is a response sent n bytes at a time, every interval.
type drip struct {
	n     int64
	every time.Duration
}

// cutAt returns the absolute offset at which f cuts a response carrying rng,
// and the action to take there. A cut beyond the end of rng never happens:
// the fault is consumed and the response completes normally.
func (f bodyFault) cutAt(rng httpRange) (int64, cutAction) {
	at := max(f.at, rng.start)
	if f.relative {
		at = rng.start + f.at
	}
	if f.action == actNone || at > rng.end {
		return rng.end, actNone
	}
	return at, f.action
}

// DropAt queues one fault per offset: the next content response for path
// stops when the absolute file offset reaches offset (the bytes before it are
// sent) and the TCP connection is closed, so the client sees the body end
// before Content-Length or without the last chunk. A response that starts at
// or after offset is dropped right after its headers; one that ends before
// offset completes normally and still consumes the fault.
func (o *Origin) DropAt(path string, offsets ...int64) {
	for _, off := range offsets {
		o.queueBodyFault(path, bodyFault{action: actDrop, at: off})
	}
}

// DropAfter makes each of the next k content responses for path close the
// connection after n body bytes of that response, whatever range it covers:
// an upstream that keeps failing while a client keeps resuming.
func (o *Origin) DropAfter(path string, n int64, k int) {
	for range k {
		o.queueBodyFault(path, bodyFault{action: actDrop, at: n, relative: true})
	}
}

// StallAt makes the next content response for path stop sending at the
// absolute offset and hold the connection open until the client goes away
// (its request context is done) or the origin is closed; then the connection
// is closed. It stands for an upstream that hangs mid-body. The returned
// channel is closed when that response has ended, so a test can wait until
// the client has really gone.
func (o *Origin) StallAt(path string, offset int64) <-chan struct{} {
	done := make(chan struct{})
	o.queueBodyFault(path, bodyFault{action: actStall, at: offset, done: done})
	return done
}

// Drip makes the next content response for path send its body n bytes at
// a time (n > 0), each flushed at once and followed by a pause of every
// (before the next one; none after the last): an upstream at n/every bytes
// per second, such as a server-sent event stream, a long poll or a slow
// link. The response completes normally; a client that goes away ends it.
func (o *Origin) Drip(path string, n int64, every time.Duration) {
	o.tb.Helper()
	if n <= 0 {
		o.tb.Fatalf("testorigin: Drip(%q, %d, %v): n must be positive", path, n, every)
	}
	o.queueBodyFault(path, bodyFault{action: actNone, drip: drip{n: n, every: every}})
}

// ChangeVersionAt makes the next content response for path, on reaching the
// absolute offset, increment the resource's version and close the
// connection: a file replaced on the server mid-download. Responses that
// start afterwards serve the new version with new validators.
func (o *Origin) ChangeVersionAt(path string, offset int64) {
	o.queueBodyFault(path, bodyFault{action: actChangeVersion, at: offset})
}

// LieContentRange makes the next 206 response for path announce a
// Content-Range moved by shift bytes (both ends, so its length still agrees
// with Content-Length) while the body comes from the true offset. A client
// that splices without checking Content-Range start (RFC 9110 §14.4) would
// store bytes at the wrong place.
func (o *Origin) LieContentRange(path string, shift int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.pathLocked(path)
	p.lies = append(p.lies, shift)
}

// FailNext makes the next k requests for path, of any method, get status
// (for example 503) with a short body, before the resource is even looked up.
func (o *Origin) FailNext(path string, status, k int) {
	o.FailNextRetryAfter(path, status, k, 0)
}

// FailNextRetryAfter is FailNext whose answers carry Retry-After: after
// (whole seconds), as an overloaded server's 503 or a rate limit's 429 do.
func (o *Origin) FailNextRetryAfter(path string, status, k int, after time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.pathLocked(path)
	for range k {
		p.failures = append(p.failures, failure{status: status, retryAfter: after})
	}
}

// failure is an injected answer instead of the resource.
type failure struct {
	status     int // 0: none
	retryAfter time.Duration
}

// queueBodyFault appends f to path's body-fault queue.
func (o *Origin) queueBodyFault(path string, f bodyFault) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.pathLocked(path)
	p.bodyFaults = append(p.bodyFaults, f)
}

// takeBodyFaults pops the body fault and, for a 206, the lie that a content
// response for path consumes. Missing faults come back as zero values, which
// do nothing.
func (o *Origin) takeBodyFaults(path string, partial bool) (bodyFault, int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.pathLocked(path)
	var f bodyFault
	if len(p.bodyFaults) > 0 {
		f, p.bodyFaults = p.bodyFaults[0], p.bodyFaults[1:]
	}
	var shift int64
	if partial && len(p.lies) > 0 {
		shift, p.lies = p.lies[0], p.lies[1:]
	}
	return f, shift
}
