package testorigin

// Registries: the origin can serve what pip, npm and the go command
// download, so tests can run those clients through the proxy. Artefacts are
// real archives built in memory, deterministically, around a payload of the
// deterministic stream (NewReader(0, 0, n)) stored without compression: an
// archive is its payload plus a few KiB at most (wheel and module zip about
// 1.4 and 0.7 KiB, npm tarball 4 to 9 KiB up to 64 MiB), so a test can cut
// a client at a known fraction of the file.
//
// Index pages (PyPI's simple pages, npm's packuments, the go command's list
// and @latest) change as packages are added, so they are sent with
// Cache-Control: no-store. Artefacts are default Resources (strong ETag,
// Last-Modified, no Cache-Control). A page or artefact rewritten with other
// bytes gets the next Version, so its validators change with it.

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// archiveTime is the modification time of every archive member and the
// publication time of every Go module version: fixed (Last-Modified of
// version 0), so that archives are byte-for-byte the same on every run, and
// after 1980, which zip needs.
func archiveTime() time.Time { return time.Unix(lastModifiedBase, 0).UTC() }

// archiveFile is one member of an archive being built.
type archiveFile struct {
	name string
	data []byte
}

// registries is what the index pages list. Guarded by Origin.mu.
type registries struct {
	// pypi maps a normalized project name to its files, in order added.
	pypi map[string][]pypiFile
	// npm maps a package name to its versions' metadata, by version.
	npm map[string]map[string]npmVersion
	// npmLatest maps a package name to the version added last.
	npmLatest map[string]string
	// goMods maps a module path to its versions, in order added.
	goMods map[string][]string
}

// newRegistries returns empty registries.
func newRegistries() registries {
	return registries{
		pypi:      make(map[string][]pypiFile),
		npm:       make(map[string]map[string]npmVersion),
		npmLatest: make(map[string]string),
		goMods:    make(map[string][]string),
	}
}

// pypiFile is one file of a PyPI project: its name under /files/ and the
// hex sha256 the simple page announces.
type pypiFile struct {
	name, sha256 string
}

// npmVersion is one version object of an npm packument.
type npmVersion struct {
	Name    string  `json:"name"`
	Version string  `json:"version"`
	Dist    npmDist `json:"dist"`
}

// npmDist is the dist object of an npm version: where the tarball is and
// the digests npm checks it against.
type npmDist struct {
	Tarball   string `json:"tarball"`
	Shasum    string `json:"shasum"`
	Integrity string `json:"integrity"`
}

// streamBytes returns n bytes of the deterministic stream, version 0: what
// NewReader(0, 0, n) reads.
func streamBytes(n int64) []byte {
	b := make([]byte, max(n, 0))
	fill(0, 0, b)
	return b
}

// mustBuild returns b, or panics with err: archives are written to memory,
// where no write fails, so an error is a bug in this file.
func mustBuild(b []byte, err error) []byte {
	if err != nil {
		panic("testorigin: building an archive in memory: " + err.Error())
	}
	return b
}

// zipStored returns a zip archive of files, each stored uncompressed.
func zipStored(files []archiveFile) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		hdr := &zip.FileHeader{Name: f.name, Method: zip.Store, Modified: archiveTime()}
		hdr.SetMode(0o644)
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return nil, fmt.Errorf("zip %s: %w", f.name, err)
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, fmt.Errorf("zip %s: %w", f.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("zip: %w", err)
	}
	return buf.Bytes(), nil
}

// tarGzipStored returns a gzip'd tar of files, with gzip.NoCompression.
func tarGzipStored(files []archiveFile) ([]byte, error) {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	tw := tar.NewWriter(gz)
	for _, f := range files {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Size: int64(len(f.data)), Mode: 0o644, ModTime: archiveTime()}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("tar: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// setPageLocked serves an index page at path, no-store, as replaceLocked
// does. o.mu must be held.
func (o *Origin) setPageLocked(path, contentType string, body []byte) {
	o.replaceLocked(path, Resource{
		Data:         body,
		CacheControl: "no-store",
		Header:       http.Header{"Content-Type": {contentType}},
	})
}

// replaceLocked serves r, whose content is Data, at path. If it replaces a
// resource with other bytes, it takes the next Version: adding a package
// again with another payload must not leave the old validators on new
// bytes (RFC 9110 §8.8.3). o.mu must be held.
func (o *Origin) replaceLocked(path string, r Resource) {
	p := o.pathLocked(path)
	if old := p.res; old != nil {
		r.Version = old.Version
		if !bytes.Equal(old.Data, r.Data) || old.Data == nil {
			r.Version++
		}
	}
	r.Size = int64(len(r.Data))
	p.res = &r
}

// sha256Hex returns the hex sha256 of b.
func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// --- PyPI ---

// pypiNormalize is the PEP 503 normalized form of a project name, the name
// of its page under /simple/: lower case, each run of "-", "_" and "."
// replaced by one "-".
func pypiNormalize(name string) string {
	var b strings.Builder
	inRun := false
	for _, r := range strings.ToLower(name) {
		sep := r == '-' || r == '_' || r == '.'
		switch {
		case !sep:
			b.WriteRune(r)
		case !inRun:
			b.WriteByte('-')
		}
		inRun = sep
	}
	return b.String()
}

// wheelDistName is name as it appears in a wheel's file name and its
// .dist-info directory (binary distribution format: normalized, with "_").
func wheelDistName(name string) string {
	return strings.ReplaceAll(pypiNormalize(name), "-", "_")
}

// WheelFileName returns the file name of Wheel(name, version, ...):
// <name>-<version>-py3-none-any.whl, with name escaped as wheels require.
func WheelFileName(name, version string) string {
	return wheelDistName(name) + "-" + version + "-py3-none-any.whl"
}

// Wheel returns a pure-Python wheel of project name at version, which pip
// accepts: a package directory (name normalized, with "_") holding
// __init__.py and data.bin (payload bytes of the deterministic stream), and
// a .dist-info directory with METADATA, WHEEL and a RECORD of every file's
// sha256 and size. version should be normalized (PEP 440), as pip compares
// it with the file name. Members are stored uncompressed.
func Wheel(name, version string, payload int64) []byte {
	dist := wheelDistName(name)
	info := dist + "-" + version + ".dist-info/"
	files := []archiveFile{
		{dist + "/__init__.py", []byte("# A resumeproxy test package; data.bin is its payload.\n")},
		{dist + "/data.bin", streamBytes(payload)},
		{info + "METADATA", []byte("Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version +
			"\nSummary: resumeproxy test package\n")},
		{info + "WHEEL", []byte("Wheel-Version: 1.0\nGenerator: resumeproxy-testorigin\n" +
			"Root-Is-Purelib: true\nTag: py3-none-any\n")},
	}
	files = append(files, archiveFile{info + "RECORD", wheelRecord(files, info+"RECORD")})
	return mustBuild(zipStored(files))
}

// wheelRecord returns the RECORD of files (binary distribution format):
// path, sha256=<urlsafe base64 without padding>, size; the RECORD itself
// is listed with neither.
func wheelRecord(files []archiveFile, record string) []byte {
	var b strings.Builder
	for _, f := range files {
		h := sha256.Sum256(f.data)
		fmt.Fprintf(&b, "%s,sha256=%s,%d\n", f.name, base64.RawURLEncoding.EncodeToString(h[:]), len(f.data))
	}
	b.WriteString(record + ",,\n")
	return []byte(b.String())
}

// AddPyPI publishes Wheel(name, version, payload) in a PEP 503 simple index
// at the origin's root and returns the wheel's path, /files/<wheel>. The
// pages are /simple/ (every project) and /simple/<normalized name>/ (its
// files, each linked as ../../files/<wheel>#sha256=<hex>, relative so that
// it holds whatever host name a client used). Point pip at URL+"/simple/".
// Adding the same name and version again replaces the file.
func (o *Origin) AddPyPI(name, version string, payload int64) (filePath string) {
	data := Wheel(name, version, payload)
	file := pypiFile{name: WheelFileName(name, version), sha256: sha256Hex(data)}
	filePath = "/files/" + file.name
	project := pypiNormalize(name)
	o.mu.Lock()
	defer o.mu.Unlock()
	files := slices.DeleteFunc(o.reg.pypi[project], func(f pypiFile) bool { return f.name == file.name })
	o.reg.pypi[project] = append(files, file)
	o.replaceLocked(filePath, Resource{Data: data})
	o.setPageLocked("/simple/"+project+"/", "text/html; charset=utf-8", pypiProjectPage(project, o.reg.pypi[project]))
	o.setPageLocked("/simple/", "text/html; charset=utf-8", pypiRootPage(o.reg.pypi))
	return filePath
}

// pypiRootPage is the PEP 503 root page: a link to every project's page.
func pypiRootPage(projects map[string][]pypiFile) []byte {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><title>Simple index</title></head><body>\n")
	for _, p := range slices.Sorted(maps.Keys(projects)) { // not in map order: pages are deterministic
		fmt.Fprintf(&b, "<a href=\"%s/\">%s</a><br>\n", html.EscapeString(p), html.EscapeString(p))
	}
	b.WriteString("</body></html>\n")
	return []byte(b.String())
}

// pypiProjectPage is the PEP 503 page of one project: a link to each file,
// with the sha256 that pip checks the download against.
func pypiProjectPage(project string, files []pypiFile) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html><head><title>Links for %s</title></head><body>\n", html.EscapeString(project))
	for _, f := range files {
		fmt.Fprintf(&b, "<a href=\"../../files/%s#sha256=%s\">%s</a><br>\n",
			html.EscapeString(f.name), f.sha256, html.EscapeString(f.name))
	}
	b.WriteString("</body></html>\n")
	return []byte(b.String())
}

// --- npm ---

// NpmTarball returns the tarball npm installs for package name at version:
// a gzip'd tar (stored, gzip.NoCompression) of package/package.json,
// package/index.js and package/data.bin (payload bytes of the
// deterministic stream).
func NpmTarball(name, version string, payload int64) []byte {
	pkg, _ := json.Marshal(map[string]string{"name": name, "version": version, "main": "index.js"})
	files := []archiveFile{
		{"package/package.json", append(pkg, '\n')},
		{"package/index.js", []byte("// A resumeproxy test package; data.bin is its payload.\nmodule.exports = {};\n")},
		{"package/data.bin", streamBytes(payload)},
	}
	return mustBuild(tarGzipStored(files))
}

// AddNpm publishes NpmTarball(name, version, payload) and returns the
// tarball's path, /<name>/-/<name>-<version>.tgz. The packument at /<name>
// lists every version added, with dist.tarball = base + that path (npm
// follows it as given, so base is the URL the client reaches the origin
// by, such as https://registry.origin.test through a proxy), dist.shasum
// and dist.integrity; dist-tags.latest is the version added last. Point npm
// at URL+"/". name must be unscoped: a scoped name's packument path is
// escaped differently.
func (o *Origin) AddNpm(base, name, version string, payload int64) (tarballPath string) {
	o.tb.Helper()
	if strings.HasPrefix(name, "@") || strings.Contains(name, "/") {
		o.tb.Fatalf("testorigin: AddNpm(%q): scoped or nested package names are not supported", name)
		return ""
	}
	data := NpmTarball(name, version, payload)
	tarballPath = "/" + name + "/-/" + name + "-" + version + ".tgz"
	sha1Sum, sha512Sum := sha1.Sum(data), sha512.Sum512(data)
	v := npmVersion{Name: name, Version: version, Dist: npmDist{
		Tarball:   strings.TrimSuffix(base, "/") + tarballPath,
		Shasum:    hex.EncodeToString(sha1Sum[:]),
		Integrity: "sha512-" + base64.StdEncoding.EncodeToString(sha512Sum[:]),
	}}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.reg.npm[name] == nil {
		o.reg.npm[name] = make(map[string]npmVersion)
	}
	o.reg.npm[name][version] = v
	o.reg.npmLatest[name] = version
	o.replaceLocked(tarballPath, Resource{Data: data})
	o.setPageLocked("/"+name, "application/json", npmPackument(name, o.reg.npmLatest[name], o.reg.npm[name]))
	return tarballPath
}

// npmPackument is the registry document of a package: its name, the
// latest dist-tag and every version.
func npmPackument(name, latest string, versions map[string]npmVersion) []byte {
	doc := struct {
		Name     string                `json:"name"`
		DistTags map[string]string     `json:"dist-tags"`
		Versions map[string]npmVersion `json:"versions"`
	}{name, map[string]string{"latest": latest}, versions}
	b, err := json.Marshal(doc) // map keys come out sorted: the page is deterministic
	return mustBuild(b, err)
}

// --- Go modules ---

// GoModuleZip returns the module zip the go command downloads for modPath
// at version, valid by the rules it checks: every file under
// <modPath>@<version>/, a go.mod declaring modPath (the same as
// GoModFile), a Go file and data.bin (payload bytes of the deterministic
// stream), nothing it rejects. Files are stored uncompressed. version must
// be canonical (v1.2.3) and agree with modPath's major version suffix.
func GoModuleZip(modPath, version string, payload int64) []byte {
	prefix := modPath + "@" + version + "/"
	files := []archiveFile{
		{prefix + "go.mod", GoModFile(modPath)},
		{prefix + "payload.go", []byte("// Package payload is a resumeproxy test module; data.bin is its payload.\n" +
			"package payload\n\n// Size is the length of data.bin.\nconst Size = " + strconv.FormatInt(max(payload, 0), 10) + "\n")},
		{prefix + "data.bin", streamBytes(payload)},
	}
	return mustBuild(zipStored(files))
}

// GoModFile returns the go.mod of the modules GoModuleZip builds, which the
// proxy also serves as <version>.mod.
func GoModFile(modPath string) []byte {
	return []byte("module " + modPath + "\n\ngo 1.21\n")
}

// escapeModule escapes a module path or version for a module proxy URL
// (module proxy protocol, "Module paths and versions"): each upper-case
// letter becomes "!" and its lower-case form, so that URLs stay distinct on
// case-insensitive file systems.
func escapeModule(s string) string {
	var b strings.Builder
	for _, r := range s {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// AddGoModule publishes GoModuleZip(modPath, version, payload) by the
// GOPROXY protocol at the origin's root and returns the zip's path,
// /<escaped modPath>/@v/<escaped version>.zip. Beside it are the version's
// .info (Version and Time) and .mod; @v/list lists every version added and
// @latest gives the .info of the version added last. Point the go command
// at GOPROXY=URL (with GOSUMDB=off: no checksum database knows the module).
func (o *Origin) AddGoModule(modPath, version string, payload int64) (zipPath string) {
	data := GoModuleZip(modPath, version, payload)
	root := "/" + escapeModule(modPath)
	at := root + "/@v/" + escapeModule(version)
	info := goInfo(version)
	o.mu.Lock()
	defer o.mu.Unlock()
	if !slices.Contains(o.reg.goMods[modPath], version) {
		o.reg.goMods[modPath] = append(o.reg.goMods[modPath], version)
	}
	o.replaceLocked(at+".zip", Resource{Data: data, Header: http.Header{"Content-Type": {"application/zip"}}})
	o.replaceLocked(at+".mod", Resource{Data: GoModFile(modPath), Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}})
	o.replaceLocked(at+".info", Resource{Data: info, Header: http.Header{"Content-Type": {"application/json"}}})
	o.setPageLocked(root+"/@v/list", "text/plain; charset=utf-8", []byte(strings.Join(o.reg.goMods[modPath], "\n")+"\n"))
	o.setPageLocked(root+"/@latest", "application/json", info)
	return at + ".zip"
}

// goInfo is the .info document of a version: its name and a fixed time.
func goInfo(version string) []byte {
	b, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, archiveTime()})
	return mustBuild(append(b, '\n'), err)
}

// --- Debian ---

// DebianPoolPath returns the pool path of a binary package as a Debian
// mirror lays it out: /debian/pool/main/<first letter>/<name>/<name>_<version>_amd64.deb
// ("lib" names take four letters, as Debian's pool does).
func DebianPoolPath(name, version string) string {
	dir := name[:min(1, len(name))]
	if strings.HasPrefix(name, "lib") && len(name) > 3 {
		dir = name[:4]
	}
	return "/debian/pool/main/" + dir + "/" + name + "/" + name + "_" + version + "_amd64.deb"
}

// AddDebianPool serves size bytes of the deterministic stream (version 0)
// at DebianPoolPath(name, version) as a plain mirror does: no ETag, no
// Last-Modified, no Cache-Control, yet byte ranges, answered as
// application/octet-stream (the mirror network does that). Nothing can validate
// it, so a client that resumes must check the bytes themselves. SetVersion
// replaces its content (other bytes, still no validators), and
// ChangeVersionAt does so mid-download: a mirror whose file changed under
// the same name.
func (o *Origin) AddDebianPool(name, version string, size int64) (path string) {
	path = DebianPoolPath(name, version)
	o.Set(path, Resource{Size: size, Validators: NoValidator,
		Header:             http.Header{"Content-Type": {"application/vnd.debian.binary-package"}},
		PartialContentType: "application/octet-stream"})
	return path
}
