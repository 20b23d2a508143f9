package proxy

import (
	"time"
)

// Observer receives what the proxy does, as it happens: the metrics and the
// status page are built from these calls (internal/admin implements it; main
// wires it). The proxy calls it from many goroutines at once and never
// waits for anything else while doing so: implementations must be quick,
// safe for concurrent use, and must not call back into the proxy.
type Observer interface {
	// RequestDone is called once per client request when its response
	// has ended (sent, cut, or abandoned by the client).
	RequestDone(AccessRecord)
	// UpstreamBytes counts n body bytes received from upstream.
	UpstreamBytes(n int64)
	// UpstreamError reports a failed upstream exchange.
	UpstreamError(UpstreamFailure)
	// Resume reports a Range request that continues stored bytes:
	// trigger is ResumeClient or ResumeUpstream, outcome ResumeOK,
	// ResumeChanged or ResumeFailed.
	Resume(trigger, outcome string)
	// HiddenDrop reports an upstream body that failed mid-way and was
	// resumed while its clients stayed connected: they saw nothing.
	HiddenDrop()
}

// NopObserver is the Observer that does nothing, the default.
type NopObserver struct{}

func (NopObserver) RequestDone(AccessRecord)      {}
func (NopObserver) UpstreamBytes(int64)           {}
func (NopObserver) UpstreamError(UpstreamFailure) {}
func (NopObserver) Resume(string, string)         {}
func (NopObserver) HiddenDrop()                   {}

// Results of a request, the label of resumeproxy_requests_total (DESIGN:
// command-line contract) and the access log's result field.
const (
	ResultHit         = "hit"         // served from a complete, fresh entry
	ResultPartial     = "partial"     // part from the cache, the rest fetched (X-Cache: PARTIAL)
	ResultMiss        = "miss"        // fetched upstream (stored or not)
	ResultRevalidated = "revalidated" // stale entry confirmed by a 304, then served
	ResultPass        = "pass"        // a request the cache takes no part in (POST, no-store, ...)
	ResultDenied      = "denied"      // refused by the gate: allow or credentials
	ResultError       = "error"       // the proxy failed it: upstream unreachable, cut mid-body, ...
	ResultTunnel      = "tunnel"      // a CONNECT
	ResultPurge       = "purge"       // a PURGE request
)

// Triggers and outcomes of Observer.Resume.
const (
	// ResumeClient: a request found a partial entry and asked upstream
	// for the rest (If-Range).
	ResumeClient = "client"
	// ResumeUpstream: a fill asked for the rest after a drop, a pause or
	// a gap met mid-response (If-Match).
	ResumeUpstream = "upstream"

	ResumeOK      = "ok"      // the upstream sent the same version's bytes
	ResumeChanged = "changed" // the resource changed: the entry was dropped
	ResumeFailed  = "failed"  // no usable answer (error, other status)
)

// Kinds of UpstreamFailure: a bounded set, a metric label.
const (
	UpstreamDial   = "dial"   // no response: connect, TLS, or no header in time
	UpstreamStatus = "status" // a 5xx, 429 or 408 instead of the body
	UpstreamDrop   = "drop"   // the body failed mid-way
	UpstreamIdle   = "idle"   // the body sent nothing for the idle timeout
)

// UpstreamFailure is one failed upstream exchange, for the metrics (Kind)
// and the status page's list of recent errors (all of it).
type UpstreamFailure struct {
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	// URL is the upstream URL as logURL renders it.
	URL string `json:"url"`
	Err string `json:"err"`
}

// AccessRecord is what the proxy tells of one client request when it ends:
// one access log line, and the request metrics.
type AccessRecord struct {
	Start time.Time
	// Client is the client's address; User the proxy user it
	// authenticated as, if any.
	Client, User string
	Method       string
	// URL is the request's URL as logURL renders it.
	URL    string
	Status int
	// Cache is the X-Cache value sent (HIT, MISS, PARTIAL), "" for none.
	Cache string
	// Result is one of the Result constants.
	Result string
	// FromCache counts the body bytes sent that were stored when the
	// request arrived; FromUpstream the rest of the body bytes sent.
	FromCache, FromUpstream int64
	// Resumes counts the Range requests that continued this response's
	// bytes upstream: its own refill and its fills' resumes.
	Resumes int64
	// Duration runs until the response ended; FirstByte until its
	// header was written (0 when none was).
	Duration, FirstByte time.Duration
	// MissReason says why a MISS was not a hit when something could have
	// made it one (missReason): a policy.Reason constant, unknown-length,
	// too-large, changed, request-no-store; "" for a plain cold miss.
	MissReason string
	// ClientAborted is set when the client left before the whole
	// response was sent.
	ClientAborted bool
}
