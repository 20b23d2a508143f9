package testorigin

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// Validators selects which validators the origin sends for a resource, and so
// whether a client may resume it: only a strong validator allows If-Range
// (RFC 9110 §13.1.5).
type Validators int

const (
	// StrongETag sends ETag "v<version>-<size>" and Last-Modified.
	StrongETag Validators = iota
	// WeakETag sends ETag W/"v<version>-<size>" and nothing else: a resource
	// that can be revalidated but never resumed.
	WeakETag
	// LastModifiedOnly sends Last-Modified only. It is at least an hour
	// before Date, so RFC 9110 §8.8.2.2 lets a client treat it as strong.
	LastModifiedOnly
	// NoValidator sends neither: nothing can be validated or resumed.
	NoValidator
)

// lastModifiedBase is Last-Modified of version 0 (2024-01-01T00:00:00Z) in
// Unix seconds. Version v is v hours later, so a version change always
// changes the date, and any version below about 20000 stays more than an
// hour before the real Date.
const lastModifiedBase = 1704067200

// Resource describes one path served by the origin. The zero value is an
// empty, strongly validated, range-capable resource of version 0.
type Resource struct {
	// Size is the length of the content in bytes. With Data it may be left
	// zero: Set makes it len(Data).
	Size int64
	// Version selects the content (see Byte); changing it also changes
	// ETag and Last-Modified, like a file replaced on the server.
	Version int
	// Data, when non-nil, is the content instead of the deterministic
	// stream: for files a real client opens (archives, index pages).
	// Ranges, conditionals, faults and accounting work the same. Version
	// still sets ETag and Last-Modified but no longer the content, so a test
	// that replaces Data at a path must change Version too, as the origin
	// would change its validators. Set keeps its own copy.
	Data []byte
	// Validators selects the validators sent; default StrongETag.
	Validators Validators
	// IgnoreRange makes the origin answer Range requests with 200 and the
	// whole body, and send Accept-Ranges: none (RFC 9110 §14.3): a server
	// without range support.
	IgnoreRange bool
	// CacheControl is sent verbatim when non-empty.
	CacheControl string
	// Header holds extra response headers (Vary, Set-Cookie, Content-Type,
	// ...), set on every response for the resource after the origin's own,
	// so they override them. Default Content-Type: application/octet-stream.
	Header http.Header
	// Rate, when positive, is the speed in bytes per second at which each
	// response sends its body: a per-connection limit, as many mirrors,
	// release CDNs and object stores set. N connections go N times faster.
	Rate int64
	// PartialContentType, when set, is the Content-Type of 206 answers
	// instead of the resource's own, as Debian's mirror network answers
	// ranges of a .deb as application/octet-stream.
	PartialContentType string
	// Chunked omits Content-Length, so bodies go out chunked and a client
	// can only tell a cut body by the missing last chunk.
	Chunked bool

	// pinned is set by ReplaceContent: the validators sent are those of
	// validatorVersion, whatever Version the content is.
	pinned           bool
	validatorVersion int
}

// validatorVer returns the version whose validators r sends.
func (r Resource) validatorVer() int {
	if r.pinned {
		return r.validatorVersion
	}
	return r.Version
}

// setVersion makes the content and the validators those of version v.
func (r *Resource) setVersion(v int) {
	r.Version, r.pinned = v, false
}

// replaceContent makes the content that of version v and keeps the
// validators sent now.
func (r *Resource) replaceContent(v int) {
	if !r.pinned {
		r.pinned, r.validatorVersion = true, r.Version
	}
	r.Version = v
}

// ETag returns the ETag field value the origin sends for r, or "" if none.
func (r Resource) ETag() string {
	tag := `"v` + strconv.Itoa(r.validatorVer()) + "-" + strconv.FormatInt(r.Size, 10) + `"`
	switch r.Validators {
	case StrongETag:
		return tag
	case WeakETag:
		return "W/" + tag
	}
	return ""
}

// LastModified returns the Last-Modified time the origin sends for r, or the
// zero time if none. It depends only on the version, so tests can predict it.
func (r Resource) LastModified() time.Time {
	switch r.Validators {
	case StrongETag, LastModifiedOnly:
		return time.Unix(lastModifiedBase, 0).UTC().Add(time.Duration(r.validatorVer()) * time.Hour)
	}
	return time.Time{}
}

// Sum returns the hex sha256 of r's whole content, what a client that
// downloaded all of it must have received: the sha256 of Data when set,
// else the package-level Sum(r.Version, r.Size).
func (r Resource) Sum() string {
	if r.Data == nil {
		return Sum(r.Version, r.Size)
	}
	h := sha256.Sum256(r.Data)
	return hex.EncodeToString(h[:])
}

// content writes bytes [off, off+len(p)) of r's content into p.
func (r Resource) content(off int64, p []byte) {
	if r.Data == nil {
		fill(r.Version, off, p)
		return
	}
	copy(p, r.Data[off:])
}

// representation returns what the conditionals of RFC 9110 §13 look at.
func (r Resource) representation() representation {
	return representation{
		size:         r.Size,
		etag:         r.ETag(),
		lastModified: r.LastModified(),
		ignoreRange:  r.IgnoreRange,
	}
}

// setHeaders sets the headers every response about r carries: validators,
// Accept-Ranges, Cache-Control and r.Header (RFC 9110 §15.4.5 wants the
// same validators and Cache-Control/Vary on a 304 as on a 200).
func (r Resource) setHeaders(h http.Header) {
	if tag := r.ETag(); tag != "" {
		h.Set("ETag", tag)
	}
	if lm := r.LastModified(); !lm.IsZero() {
		h.Set("Last-Modified", lm.Format(http.TimeFormat))
	}
	if r.IgnoreRange {
		h.Set("Accept-Ranges", "none")
	} else {
		h.Set("Accept-Ranges", "bytes")
	}
	if r.CacheControl != "" {
		h.Set("Cache-Control", r.CacheControl)
	}
	for k, vs := range r.Header {
		h.Del(k)
		for _, v := range vs {
			h.Add(k, v)
		}
	}
}
