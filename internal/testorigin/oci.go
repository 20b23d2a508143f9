package testorigin

// An OCI distribution registry, as container clients meet it (issue 10): a
// blob is asked for by digest with a bearer token, and the registry answers
// with a redirect to a signed URL on its blob store, whose path is the
// registry storage layout (Docker Hub's CDN serves the same shape). The
// same digest under two repositories is one blob on the store.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultBlobLifetime is how long the registry's signed blob URLs stay
// valid unless OCIBlob.Lifetime says otherwise (Docker Hub's are
// 20 minutes).
const DefaultBlobLifetime = 20 * time.Minute

// tokenPath is the registry's token endpoint (RFC 6750 bearer tokens, as
// the distribution spec's token authentication hands them out).
const tokenPath = "/token"

// OCIBlob configures AddOCIBlob.
type OCIBlob struct {
	// Repo is the repository, such as "library/alpine".
	Repo string
	// Data is the blob; the origin keeps its own copy.
	Data []byte
	// CDNHost, when set, is the host[:port] of the registry's redirect,
	// with the request's scheme: a blob store on a host of its own.
	// Default "": the request's host.
	CDNHost string
	// Lifetime is how long each signed blob URL stays valid. Default
	// DefaultBlobLifetime.
	Lifetime time.Duration
	// Corrupt makes the blob store serve the byte at CorruptAt flipped
	// (under the same validators): a blob that does not match its digest,
	// as bit rot or a broken mirror would serve it.
	Corrupt   bool
	CorruptAt int64
}

// AddOCIBlob serves b.Data from a registry at the origin and returns the
// blob's registry path (/v2/<repo>/blobs/sha256:<hex>), its store path and
// its digest ("sha256:<hex>"). GET or HEAD of the registry path needs
// "Authorization: Bearer <token>" for the repository, from
// /token?service=testorigin&scope=repository:<repo>:pull (OCIToken gives
// it directly); without it the answer is 401 with a WWW-Authenticate
// challenge naming that endpoint. With it the answer is 307 to a signed
// URL (SignedPath) of the store path,
// /registry-v2/docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data, which
// serves the blob with ranges and a strong ETag while the signature is
// valid (403 otherwise) and needs no token.
func (o *Origin) AddOCIBlob(b OCIBlob) (blobPath, storePath, digest string) {
	o.tb.Helper()
	sum := sha256Hex(b.Data)
	digest = "sha256:" + sum
	blobPath = "/v2/" + b.Repo + "/blobs/" + digest
	storePath = "/registry-v2/docker/registry/v2/blobs/sha256/" + sum[:2] + "/" + sum + "/data"
	data := b.Data
	if b.Corrupt {
		if b.CorruptAt < 0 || b.CorruptAt >= int64(len(data)) {
			o.tb.Fatalf("testorigin: AddOCIBlob: CorruptAt %d outside the %d-byte blob", b.CorruptAt, len(data))
		}
		data = append([]byte(nil), data...)
		data[b.CorruptAt] ^= 0xff
	}
	lifetime := b.Lifetime
	if lifetime <= 0 {
		lifetime = DefaultBlobLifetime
	}
	o.Set(storePath, Resource{Data: data})
	o.RequireSignature(storePath)
	o.setGuard(tokenPath, o.serveToken)
	o.setGuard(blobPath, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Bearer "+o.OCIToken(b.Repo) {
			challenge(w, r, b.Repo)
			return true
		}
		w.Header().Set("Docker-Content-Digest", digest)
		w.Header().Set("Location", location(r, b.CDNHost, o.SignedPath(storePath, lifetime)))
		writeShort(w, r, http.StatusTemporaryRedirect, "")
		return true
	})
	return blobPath, storePath, digest
}

// OCIToken returns the bearer token that lets a client pull repo: an HMAC
// of the scope under the origin's key, so nobody else can make one.
func (o *Origin) OCIToken(repo string) string {
	m := hmac.New(sha256.New, o.signKey)
	m.Write([]byte("repository:" + repo + ":pull"))
	return "testorigin." + hex.EncodeToString(m.Sum(nil))
}

// challenge answers 401 with the bearer challenge of the distribution
// spec's token authentication: where to get a token, for what scope.
func challenge(w http.ResponseWriter, r *http.Request, repo string) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="`+scheme+"://"+r.Host+tokenPath+
		`",service="testorigin",scope="repository:`+repo+`:pull"`)
	writeShort(w, r, http.StatusUnauthorized, "testorigin: authentication required\n")
}

// serveToken is the token endpoint: anonymous pull tokens for the
// repository the scope names, as Docker Hub hands them out for public
// images.
func (o *Origin) serveToken(w http.ResponseWriter, r *http.Request) bool {
	scope := r.URL.Query().Get("scope")
	rest, pre := strings.CutPrefix(scope, "repository:")
	repo, suf := strings.CutSuffix(rest, ":pull")
	if !pre || !suf || repo == "" {
		writeShort(w, r, http.StatusBadRequest, "testorigin: want scope=repository:<name>:pull\n")
		return true
	}
	tok := o.OCIToken(repo)
	body, _ := json.Marshal(map[string]any{"token": tok, "access_token": tok, "expires_in": 300}) // plain values: cannot fail
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body) // a client that went away needs no token
	}
	return true
}
