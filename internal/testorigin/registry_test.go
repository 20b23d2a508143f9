package testorigin

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clientPayload is the payload of the packages the real clients fetch:
// large enough to take several reads, small enough to keep tests quick.
const clientPayload = 1 << 20

// clientTimeout bounds each run of a real client, so none can hang a test.
const clientTimeout = 3 * time.Minute

func TestPypiNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"requests", "requests"},
		{"Resume_Proxy.Demo", "resume-proxy-demo"},
		{"a--_.b", "a-b"},
		{"Zope.Interface", "zope-interface"},
	} {
		if got := pypiNormalize(tc.in); got != tc.want {
			t.Errorf("pypiNormalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got, want := WheelFileName("Resume_Proxy.Demo", "1.0.0"), "resume_proxy_demo-1.0.0-py3-none-any.whl"; got != want {
		t.Errorf("WheelFileName(Resume_Proxy.Demo, 1.0.0) = %q, want %q", got, want)
	}
}

func TestEscapeModule(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"golang.org/x/mod", "golang.org/x/mod"},
		{"github.com/Azure/azure-sdk", "github.com/!azure/azure-sdk"},
		{"origin.test/Demo/MOD", "origin.test/!demo/!m!o!d"},
		{"v1.0.0-RC1", "v1.0.0-!r!c1"},
	} {
		if got := escapeModule(tc.in); got != tc.want {
			t.Errorf("escapeModule(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// unzip returns the members of a zip archive by name, failing the test
// unless every one is stored uncompressed.
func unzip(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("zip.NewReader: %v", err)
	}
	files := make(map[string][]byte)
	for _, f := range zr.File {
		if f.Method != zip.Store {
			t.Errorf("zip member %s: method %d, want Store", f.Name, f.Method)
		}
		files[f.Name] = readZipFile(t, f)
	}
	return files
}

func readZipFile(t *testing.T, f *zip.File) []byte {
	t.Helper()
	rc, err := f.Open()
	if err != nil {
		t.Fatalf("open %s: %v", f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", f.Name, err)
	}
	return b
}

// untgz returns the members of a gzip'd tar by name.
func untgz(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("gzip.NewReader: %v", err)
	}
	files := make(map[string][]byte)
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		if files[hdr.Name], err = io.ReadAll(tr); err != nil {
			t.Fatalf("tar %s: %v", hdr.Name, err)
		}
	}
}

// names returns the keys of files, sorted and joined by spaces.
func names(files map[string][]byte) string {
	return strings.Join(slices.Sorted(maps.Keys(files)), " ")
}

// checkArchive checks what every artefact must be: the same bytes on every
// build, data.bin holding the payload, and no more than overhead bytes
// beyond it, so a test can cut a client at a known fraction.
func checkArchive(t *testing.T, what string, build func() []byte, dataBin []byte, payload int64, overhead int) {
	t.Helper()
	a := build()
	if !bytes.Equal(a, build()) {
		t.Errorf("%s: two builds differ", what)
	}
	if !bytes.Equal(dataBin, bytesOf(0, 0, payload)) {
		t.Errorf("%s: data.bin is %d bytes, want the %d bytes of NewReader(0, 0, %d)", what, len(dataBin), payload, payload)
	}
	if extra := len(a) - int(payload); extra < 0 || extra > overhead {
		t.Errorf("%s: %d bytes for a payload of %d, want at most %d more", what, len(a), payload, overhead)
	}
}

func TestWheel(t *testing.T) {
	const payload = 100_003
	build := func() []byte { return Wheel("Resume_Proxy.Demo", "1.0.0", payload) }
	files := unzip(t, build())
	const want = "resume_proxy_demo-1.0.0.dist-info/METADATA resume_proxy_demo-1.0.0.dist-info/RECORD " +
		"resume_proxy_demo-1.0.0.dist-info/WHEEL resume_proxy_demo/__init__.py resume_proxy_demo/data.bin"
	if got := names(files); got != want {
		t.Fatalf("Wheel members = %s, want %s", got, want)
	}
	checkArchive(t, "Wheel", build, files["resume_proxy_demo/data.bin"], payload, 4096)
	if m := string(files["resume_proxy_demo-1.0.0.dist-info/METADATA"]); !strings.Contains(m, "\nName: Resume_Proxy.Demo\nVersion: 1.0.0\n") {
		t.Errorf("METADATA = %q, want Name and Version of the project", m)
	}
	// RECORD lists every other member with its sha256 and size.
	record := strings.Split(strings.TrimSpace(string(files["resume_proxy_demo-1.0.0.dist-info/RECORD"])), "\n")
	if len(record) != len(files) {
		t.Fatalf("RECORD has %d lines, want %d", len(record), len(files))
	}
	for _, line := range record {
		name, rest, _ := strings.Cut(line, ",")
		if strings.HasSuffix(name, "/RECORD") {
			if rest != "," {
				t.Errorf("RECORD line for itself = %q, want %q", line, name+",,")
			}
			continue
		}
		h := sha256.Sum256(files[name])
		if want := "sha256=" + base64.RawURLEncoding.EncodeToString(h[:]) + "," + strconv.Itoa(len(files[name])); rest != want {
			t.Errorf("RECORD line %q, want %s,%s", line, name, want)
		}
	}
}

func TestNpmTarball(t *testing.T) {
	const payload = 100_003
	build := func() []byte { return NpmTarball("resume-demo", "1.2.3", payload) }
	files := untgz(t, build())
	if got, want := names(files), "package/data.bin package/index.js package/package.json"; got != want {
		t.Fatalf("NpmTarball members = %s, want %s", got, want)
	}
	checkArchive(t, "NpmTarball", build, files["package/data.bin"], payload, 8192)
	var pkg struct{ Name, Version string }
	if err := json.Unmarshal(files["package/package.json"], &pkg); err != nil || pkg.Name != "resume-demo" || pkg.Version != "1.2.3" {
		t.Errorf("package.json = %s (%v), want name resume-demo, version 1.2.3", files["package/package.json"], err)
	}
}

func TestGoModuleZip(t *testing.T) {
	const payload = 100_003
	build := func() []byte { return GoModuleZip("origin.test/Demo/mod", "v1.2.3", payload) }
	files := unzip(t, build())
	const p = "origin.test/Demo/mod@v1.2.3/"
	if got, want := names(files), p+"data.bin "+p+"go.mod "+p+"payload.go"; got != want {
		t.Fatalf("GoModuleZip members = %s, want %s", got, want)
	}
	checkArchive(t, "GoModuleZip", build, files[p+"data.bin"], payload, 4096)
	if got, want := string(files[p+"go.mod"]), string(GoModFile("origin.test/Demo/mod")); got != want || !strings.HasPrefix(got, "module origin.test/Demo/mod\n") {
		t.Errorf("go.mod = %q, want %q", got, want)
	}
}

// getOK GETs url and fails the test unless the answer is 200 with the
// given Content-Type and Cache-Control.
func getOK(t *testing.T, c *http.Client, url, contentType, cacheControl string) (*http.Response, []byte) {
	t.Helper()
	resp, body := get(t, c, url)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != contentType || resp.Header.Get("Cache-Control") != cacheControl {
		t.Errorf("GET %s = %d, Content-Type %q, Cache-Control %q; want 200, %q, %q", url, resp.StatusCode,
			resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), contentType, cacheControl)
	}
	return resp, body
}

func TestAddPyPI(t *testing.T) {
	o, c := New(t), client(t)
	path := o.AddPyPI("Resume_Proxy.Demo", "1.0.0", 1000)
	o.AddPyPI("Resume_Proxy.Demo", "1.1.0", 2000)
	o.AddPyPI("other", "0.1", 10)
	if want := "/files/resume_proxy_demo-1.0.0-py3-none-any.whl"; path != want {
		t.Errorf("AddPyPI = %s, want %s", path, want)
	}
	_, root := getOK(t, c, o.URL+"/simple/", "text/html; charset=utf-8", "no-store")
	if !strings.Contains(string(root), `href="other/"`) || !strings.Contains(string(root), `href="resume-proxy-demo/"`) {
		t.Errorf("/simple/ = %s, want relative links to both projects", root)
	}
	_, page := getOK(t, c, o.URL+"/simple/resume-proxy-demo/", "text/html; charset=utf-8", "no-store")
	links := regexp.MustCompile(`href="\.\./\.\./files/([^"#]+)#sha256=([0-9a-f]{64})"`).FindAllStringSubmatch(string(page), -1)
	if len(links) != 2 {
		t.Fatalf("/simple/resume-proxy-demo/ = %s, want links to two wheels", page)
	}
	for _, l := range links {
		resp, wheel := getOK(t, c, o.URL+"/files/"+l[1], "application/octet-stream", "")
		if sha256Hex(wheel) != l[2] || !strings.HasPrefix(resp.Header.Get("ETag"), `"`) {
			t.Errorf("GET /files/%s: sha256 %s, ETag %s; want the page's %s and a strong ETag", l[1], sha256Hex(wheel), resp.Header.Get("ETag"), l[2])
		}
	}
}

// TestAddAgain checks that publishing again with other bytes, even of the
// same size, changes a resource's validators, that publishing the same
// bytes again changes nothing, and that a re-added file is listed once.
func TestAddAgain(t *testing.T) {
	o := New(t)
	etags := func() (tarball, packument string) {
		r, _ := o.Resource("/demo/-/demo-1.0.0.tgz")
		p, _ := o.Resource("/demo")
		return r.ETag(), p.ETag()
	}
	o.AddNpm("https://a.test", "demo", "1.0.0", 1000)
	tgz0, doc0 := etags()
	o.AddNpm("https://a.test", "demo", "1.0.0", 1000)
	if tgz, doc := etags(); tgz != tgz0 || doc != doc0 {
		t.Errorf("same package again: ETags %s, %s -> %s, %s; want unchanged", tgz0, doc0, tgz, doc)
	}
	o.AddNpm("https://b.test", "demo", "1.0.0", 1000) // a packument of the same size
	if tgz, doc := etags(); tgz != tgz0 || doc == doc0 {
		t.Errorf("new base: ETags %s, %s -> %s, %s; want the packument's changed only", tgz0, doc0, tgz, doc)
	}

	o.AddPyPI("demo", "1.0.0", 1000)
	o.AddPyPI("demo", "1.0.0", 1001)
	if page, _ := o.Resource("/simple/demo/"); strings.Count(string(page.Data), "<a ") != 1 {
		t.Errorf("page after re-adding the same file = %s, want one link", page.Data)
	}
}

func TestAddNpm(t *testing.T) {
	o, c := New(t), client(t)
	const base = "https://registry.origin.test/"
	path := o.AddNpm(base, "resume-demo", "1.0.0", 1000)
	o.AddNpm(base, "resume-demo", "1.1.0", 1000)
	if want := "/resume-demo/-/resume-demo-1.0.0.tgz"; path != want {
		t.Errorf("AddNpm = %s, want %s", path, want)
	}
	_, body := getOK(t, c, o.URL+"/resume-demo", "application/json", "no-store")
	var doc struct {
		Name     string
		DistTags map[string]string `json:"dist-tags"`
		Versions map[string]npmVersion
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("packument %s: %v", body, err)
	}
	if doc.Name != "resume-demo" || doc.DistTags["latest"] != "1.1.0" || len(doc.Versions) != 2 {
		t.Errorf("packument = %s, want name, latest 1.1.0 and two versions", body)
	}
	v := doc.Versions["1.0.0"]
	if v.Dist.Tarball != "https://registry.origin.test"+path {
		t.Errorf("dist.tarball = %s, want https://registry.origin.test%s", v.Dist.Tarball, path)
	}
	_, tgz := getOK(t, c, o.URL+path, "application/octet-stream", "")
	s1, s512 := sha1.Sum(tgz), sha512.Sum512(tgz)
	if v.Dist.Shasum != hex.EncodeToString(s1[:]) || v.Dist.Integrity != "sha512-"+base64.StdEncoding.EncodeToString(s512[:]) {
		t.Errorf("dist = %+v, want the sha1 and sha512 of the tarball served", v.Dist)
	}
}

func TestAddGoModule(t *testing.T) {
	o, c := New(t), client(t)
	path := o.AddGoModule("origin.test/Demo/mod", "v1.0.0", 1000)
	o.AddGoModule("origin.test/Demo/mod", "v1.1.0-RC1", 1000)
	const root = "/origin.test/!demo/mod"
	if want := root + "/@v/v1.0.0.zip"; path != want {
		t.Errorf("AddGoModule = %s, want %s", path, want)
	}
	if _, list := getOK(t, c, o.URL+root+"/@v/list", "text/plain; charset=utf-8", "no-store"); string(list) != "v1.0.0\nv1.1.0-RC1\n" {
		t.Errorf("@v/list = %q, want both versions", list)
	}
	for _, tc := range []struct{ path, want string }{
		{root + "/@latest", `{"Version":"v1.1.0-RC1","Time":"2024-01-01T00:00:00Z"}` + "\n"},
		{root + "/@v/v1.1.0-!r!c1.info", `{"Version":"v1.1.0-RC1","Time":"2024-01-01T00:00:00Z"}` + "\n"},
		{root + "/@v/v1.0.0.mod", string(GoModFile("origin.test/Demo/mod"))},
		{path, string(GoModuleZip("origin.test/Demo/mod", "v1.0.0", 1000))},
	} {
		if _, body := get(t, c, o.URL+tc.path); string(body) != tc.want {
			t.Errorf("GET %s = %.80q, want %.80q", tc.path, body, tc.want)
		}
	}
}

// need fails the test (under CI) or skips it (elsewhere) unless check,
// which looks for a client, succeeds.
func need(t *testing.T, what, aptPackages string, check func() error) {
	t.Helper()
	err := check()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s: %v; CI must have it: sudo apt-get install -y %s (scripts/install-test-deps.sh)", what, err, aptPackages)
	}
	t.Skipf("%s: %v; install it with: sudo apt-get install -y %s", what, err, aptPackages)
}

// lookPath returns a check that bin is on PATH.
func lookPath(bin string) func() error {
	return func() error {
		_, err := exec.LookPath(bin)
		return err
	}
}

// clientEnv is the environment of a real client: ours without what would
// send it elsewhere or make it distrust the origin, with extra appended
// (later entries win). Dropped: proxy settings; pip's and npm's settings
// (a PIP_FIND_LINKS would offer other wheels); and REQUESTS_CA_BUNDLE and
// CURL_CA_BUNDLE, which the requests library inside pip prefers to pip's
// own --cert.
func clientEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		up := strings.ToUpper(name)
		if strings.HasSuffix(up, "_PROXY") || strings.HasPrefix(up, "PIP_") || strings.HasPrefix(up, "NPM_CONFIG_") ||
			up == "REQUESTS_CA_BUNDLE" || up == "CURL_CA_BUNDLE" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// run runs a real client in dir with env and a timeout, and returns its
// standard output; the test fails with everything it wrote if it fails.
func run(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env, cmd.WaitDelay = dir, env, 5*time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// fileSum returns the hex sha256 of the file at path.
func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading what the client wrote: %v", err)
	}
	return sha256Hex(b)
}

// TestPipDownload has pip fetch a wheel from AddPyPI's index over TLS and
// checks it against the hash the index announced.
func TestPipDownload(t *testing.T) {
	need(t, "python3 with pip", "python3 python3-pip", func() error {
		return exec.Command("python3", "-m", "pip", "--version").Run()
	})
	o, dir := NewTLS(t), t.TempDir()
	path := o.AddPyPI("Resume_Proxy.Demo", "1.0.0", clientPayload)
	env := clientEnv("HOME="+dir, "PIP_CONFIG_FILE="+os.DevNull, "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1")
	run(t, dir, env, "python3", "-m", "pip", "download", "--no-deps", "--no-cache-dir",
		"--cert", o.CAFile, "--index-url", o.URL+"/simple/", "-d", filepath.Join(dir, "out"), "resume-proxy-demo==1.0.0")

	page, _ := o.Resource("/simple/resume-proxy-demo/")
	want := regexp.MustCompile(`#sha256=([0-9a-f]{64})`).FindSubmatch(page.Data)
	got := fileSum(t, filepath.Join(dir, "out", WheelFileName("Resume_Proxy.Demo", "1.0.0")))
	if want == nil || got != string(want[1]) {
		t.Errorf("downloaded wheel sha256 = %s, want the index's %q", got, want)
	}
	if r, _ := o.Resource(path); o.PathBodyBytes(path) != r.Size {
		t.Errorf("PathBodyBytes(%s) = %d, want the wheel's %d bytes", path, o.PathBodyBytes(path), r.Size)
	}
}

// TestNpmInstall has npm install a package from AddNpm's registry over TLS.
func TestNpmInstall(t *testing.T) {
	need(t, "npm", "nodejs npm", lookPath("npm"))
	o, dir := NewTLS(t), t.TempDir()
	path := o.AddNpm(o.URL, "resume-demo", "1.0.0", clientPayload)
	env := clientEnv("HOME="+dir,
		"NPM_CONFIG_USERCONFIG="+filepath.Join(dir, "npmrc"), "NPM_CONFIG_GLOBALCONFIG="+filepath.Join(dir, "npmrc-global"),
		"NPM_CONFIG_UPDATE_NOTIFIER=false")
	run(t, dir, env, "npm", "install", "--prefix", filepath.Join(dir, "prefix"), "--cache", filepath.Join(dir, "npmcache"),
		"--registry", o.URL+"/", "--cafile", o.CAFile, "--no-audit", "--no-fund", "resume-demo@1.0.0")

	got := fileSum(t, filepath.Join(dir, "prefix", "node_modules", "resume-demo", "data.bin"))
	if want := Sum(0, clientPayload); got != want {
		t.Errorf("installed data.bin sha256 = %s, want Sum(0, %d) = %s", got, clientPayload, want)
	}
	if r, _ := o.Resource(path); o.PathBodyBytes(path) != r.Size {
		t.Errorf("PathBodyBytes(%s) = %d, want the tarball's %d bytes", path, o.PathBodyBytes(path), r.Size)
	}
}

// TestGoModDownload has the go command download a module from
// AddGoModule's proxy over TLS, through a path that needs escaping.
func TestGoModDownload(t *testing.T) {
	need(t, "go", "golang-go", lookPath("go"))
	const modPath, version = "origin.test/Demo/mod", "v1.0.0"
	o, dir := NewTLS(t), t.TempDir()
	path := o.AddGoModule(modPath, version, clientPayload)
	env := clientEnv("HOME="+dir, "GOPROXY="+o.URL, "GOSUMDB=off", "GONOSUMDB=*", "GONOPROXY=", "GOPRIVATE=",
		// -modcacherw: the module cache is read-only otherwise, and
		// t.TempDir could not remove it.
		"GOFLAGS=-mod=mod -modcacherw", "GOMODCACHE="+filepath.Join(dir, "modcache"), "GOCACHE="+filepath.Join(dir, "gocache"),
		"SSL_CERT_FILE="+o.CAFile, "GOTOOLCHAIN=local", "GOENV=off", "GOWORK=off")
	out := run(t, dir, env, "go", "mod", "download", "-json", modPath+"@"+version)

	var got struct{ Zip, Dir, Error string }
	if err := json.Unmarshal(out, &got); err != nil || got.Error != "" {
		t.Fatalf("go mod download -json = %s (%v), want no Error", out, err)
	}
	if want := sha256Hex(GoModuleZip(modPath, version, clientPayload)); fileSum(t, got.Zip) != want {
		t.Errorf("module cache zip %s sha256 = %s, want %s", got.Zip, fileSum(t, got.Zip), want)
	}
	if s := fileSum(t, filepath.Join(got.Dir, "data.bin")); s != Sum(0, clientPayload) {
		t.Errorf("extracted data.bin sha256 = %s, want Sum(0, %d)", s, clientPayload)
	}
	if r, _ := o.Resource(path); o.PathBodyBytes(path) != r.Size {
		t.Errorf("PathBodyBytes(%s) = %d, want the zip's %d bytes", path, o.PathBodyBytes(path), r.Size)
	}
}
