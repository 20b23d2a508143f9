// Package rangeutil holds resumeproxy's byte-range arithmetic: parsing and
// formatting the Range and Content-Range headers (RFC 9110 §14), and Set, the
// record of which bytes of a sparse cache file are present.
//
// Inside the program every range is half-open, [Start, End). HTTP writes
// ranges inclusively ("bytes=0-99" is the first hundred bytes); that form is
// produced and consumed only by the parse and format functions of this
// package, so the ±1 between the two forms is written in one place. Off-by-one
// errors gather where forms change, and here one would serve wrong bytes.
//
// Formatters never emit a header value that means something other than what
// was asked: given an input they cannot represent (an empty or negative
// range, a range past the complete length) they return "", which callers
// treat as "no header".
package rangeutil
