// Package policy holds the pure HTTP rules of the proxy: storability and
// Cache-Control (RFC 9111 §3, §5.2), Vary, validators and their strength
// (RFC 9110 §8.8), freshness and age (RFC 9111 §4.2), client preconditions
// and the range to answer (RFC 9110 §13.2.2, §14.2), the check of an
// upstream 206, hop-by-hop and stored header fields (RFC 9110 §7.6.1), and
// cache keys.
//
// Everything here takes values and returns values: no I/O, no logging, no
// clock (times come in as arguments). It imports only the standard library
// and rangeutil, so the import graph keeps it that way.
package policy
