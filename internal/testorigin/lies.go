package testorigin

import "net/http"

// Lies about the representation: responses whose headers contradict what
// was asked or what the client holds, each queued per path and consumed in
// order like the other faults (faults.go).

// NotModifiedWith makes the next GET for path, whatever its preconditions,
// get 304 Not Modified with ETag etag and the resource's other headers: an
// origin (or a cache in front of it) that confirms a version other than
// the one the client asked about.
func (o *Origin) NotModifiedWith(path, etag string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.pathLocked(path)
	p.notModified = append(p.notModified, etag)
}

// takeNotModified pops the ETag of a queued NotModifiedWith for path; ok
// is false when none is queued.
func (o *Origin) takeNotModified(path string) (etag string, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.pathLocked(path)
	if len(p.notModified) == 0 {
		return "", false
	}
	etag, p.notModified = p.notModified[0], p.notModified[1:]
	return etag, true
}

// lieNotModified answers r with a queued NotModifiedWith, if any, and
// reports whether it did.
func (o *Origin) lieNotModified(w http.ResponseWriter, r *http.Request, res Resource) bool {
	if r.Method != http.MethodGet {
		return false
	}
	etag, ok := o.takeNotModified(r.URL.Path)
	if !ok {
		return false
	}
	res.setHeaders(w.Header())
	w.Header().Set("ETag", etag)
	w.WriteHeader(http.StatusNotModified)
	return true
}

// partialLie is one queued lie about a 206 response.
type partialLie struct {
	as200    bool   // PartialAs200
	encoding string // EncodeRanges: the Content-Encoding to send
}

// PartialAs200 makes the next 206 response for path go out with status 200
// OK, keeping its Content-Range and its partial body: a server that answers
// a Range with the bytes asked for but the status of the whole file. A
// cache that believes the status stores the part as the complete file.
func (o *Origin) PartialAs200(path string) {
	o.queuePartialLie(path, partialLie{as200: true})
}

// EncodeRanges makes the next 206 response for path carry
// Content-Encoding: coding and, in place of its content, as many bytes of
// other content (those of version -1-v of the deterministic stream; see
// Byte), standing for the encoded form: a server that answers a range
// with another encoding than the whole file had. Validators stay those of
// the resource. A cache that splices it mixes two representations.
func (o *Origin) EncodeRanges(path, coding string) {
	o.queuePartialLie(path, partialLie{encoding: coding})
}

func (o *Origin) queuePartialLie(path string, l partialLie) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.pathLocked(path)
	p.partialLies = append(p.partialLies, l)
}

// liePartial applies the next queued partial lie for path, if any, to a 206
// about to go out with header h and content res. It returns the status to
// send and the resource whose content to send.
func (o *Origin) liePartial(path string, h http.Header, res Resource) (int, Resource) {
	o.mu.Lock()
	p := o.pathLocked(path)
	var l partialLie
	if len(p.partialLies) > 0 {
		l, p.partialLies = p.partialLies[0], p.partialLies[1:]
	}
	o.mu.Unlock()
	if l.encoding != "" {
		h.Set("Content-Encoding", l.encoding)
		res.Data, res.Version = nil, -1-res.Version
	}
	if l.as200 {
		return http.StatusOK, res
	}
	return http.StatusPartialContent, res
}

// ReplaceContent makes the resource at path serve the content of version v
// under the validators it sends now: a file rewritten within the second
// its Last-Modified names, which the date cannot tell apart (RFC 9110
// §8.8.2.2 lets a client assume that does not happen), or a server that
// keeps its ETag across a change. SetVersion and ChangeVersionAt, which
// change the validators too, end it. With Data the content does not depend
// on the version: use the deterministic content.
func (o *Origin) ReplaceContent(path string, v int) {
	o.tb.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.pathLocked(path)
	if p.res == nil {
		o.tb.Fatalf("testorigin: ReplaceContent(%q): no resource at that path", path)
	}
	p.res.replaceContent(v) // responses under way hold their own copy
}

// ReplaceContentAt makes the next content response for path, on reaching
// the absolute offset, replace the content with that of the next version,
// keeping the validators (as ReplaceContent), and close the connection: a
// file rewritten mid-download within the second its date names. Responses
// that start afterwards serve the new content under the old validators.
func (o *Origin) ReplaceContentAt(path string, offset int64) {
	o.queueBodyFault(path, bodyFault{action: actReplace, at: offset})
}

// replaceContent moves the content at path, if any, to the next version,
// keeping the validators.
func (o *Origin) replaceContent(path string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if p := o.pathLocked(path); p.res != nil {
		p.res.replaceContent(p.res.Version + 1)
	}
}
