package proxy

import (
	"strconv"
	"unicode/utf8"
)

// maxLogValue bounds a logged value that a client or an upstream chose: a
// URL, a Host, a header value, an error that quotes one. A request line
// may be 64 KiB long, and logging it whole lets one client fill the log.
const maxLogValue = 512

// clip returns s cut to maxLogValue bytes (at a character boundary), with
// a marker saying how much was cut. Every log attribute in this package
// that carries a URL, a Host or a header value goes through it.
func clip(s string) string {
	if len(s) <= maxLogValue {
		return s
	}
	cut := maxLogValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…[" + strconv.Itoa(len(s)-cut) + " more bytes]"
}

// clipErr is clip for an error's text: errors quote URLs and hosts.
func clipErr(err error) string {
	if err == nil {
		return ""
	}
	return clip(err.Error())
}
