package policy

import (
	"net/url"
	"strings"
)

// CacheKey names a resource: its absolute URL without fragment, with the
// scheme and host in lower case and the default port dropped.
func CacheKey(u *url.URL) string {
	k := *u
	k.Fragment, k.RawFragment, k.User = "", "", nil
	k.Scheme = strings.ToLower(k.Scheme)
	k.Host = strings.ToLower(k.Host)
	if port := k.Port(); (k.Scheme == "http" && port == "80") || (k.Scheme == "https" && port == "443") {
		k.Host = k.Hostname()
		if strings.Contains(k.Host, ":") {
			k.Host = "[" + k.Host + "]" // IPv6 literal
		}
	}
	if k.Path == "" {
		k.Path = "/"
	}
	return k.String()
}
