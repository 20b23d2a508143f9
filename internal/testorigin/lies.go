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
