package main

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"

	"github.com/resumeproxy/resumeproxy/internal/testorigin"
)

// TestPasswd: passwd reads the first line of stdin (not a terminal here)
// and prints its bcrypt hash, or the auth.users line with a user; bad
// input exits 2 and --help exits 0.
func TestPasswd(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		code  int
		pw    string // the password the hash must match
		user  string // the user of the printed line, "" for a bare hash
		cost  int
	}{
		{"bare hash", []string{"--cost", "4"}, "s3cret\n", 0, "s3cret", "", 4},
		{"no newline", []string{"--cost", "4"}, "s3cret", 0, "s3cret", "", 4},
		{"CRLF", []string{"--cost", "4"}, "s3cret\r\nmore\n", 0, "s3cret", "", 4},
		{"with a user", []string{"--cost", "4", "alice"}, "wonderland\n", 0, "wonderland", "alice", 4},
		{"a user YAML must quote", []string{"--cost", "4", "#bob x"}, "builder\n", 0, "builder", "#bob x", 4},
		{"default cost", nil, "s3cret\n", 0, "s3cret", "", bcrypt.DefaultCost},
		{"empty password", []string{"--cost", "4"}, "\n", 2, "", "", 0},
		{"too long", []string{"--cost", "4"}, strings.Repeat("x", 73) + "\n", 2, "", "", 0},
		{"cost too low", []string{"--cost", "3"}, "s3cret\n", 2, "", "", 0},
		{"cost not a number", []string{"--cost", "high"}, "s3cret\n", 2, "", "", 0},
		{"user with a colon", []string{"a:b"}, "s3cret\n", 2, "", "", 0},
		{"two users", []string{"alice", "bob"}, "s3cret\n", 2, "", "", 0},
		{"help", []string{"--help"}, "", 0, "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			err := runPasswd(tt.args, strings.NewReader(tt.stdin), &out, &errOut)
			if got := exitCode(err); got != tt.code {
				t.Fatalf("passwd %q: exit %d (%v), want %d", tt.args, got, err, tt.code)
			}
			if tt.pw == "" {
				return
			}
			hash := strings.TrimSpace(out.String())
			if tt.user != "" {
				var m map[string]string
				if err := yaml.Unmarshal([]byte(out.String()), &m); err != nil || len(m) != 1 {
					t.Fatalf("passwd %q printed %q: not a one-entry YAML mapping (%v)", tt.args, out.String(), err)
				}
				hash = m[tt.user]
			}
			if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(tt.pw)); err != nil {
				t.Errorf("passwd %q printed %q: not a hash of %q: %v", tt.args, out.String(), tt.pw, err)
			}
			if c, _ := bcrypt.Cost([]byte(hash)); c != tt.cost {
				t.Errorf("passwd %q: cost %d, want %d", tt.args, c, tt.cost)
			}
			if strings.Contains(out.String()+errOut.String(), tt.pw) {
				t.Errorf("passwd %q echoed the password", tt.args)
			}
		})
	}
}

// TestE2EProxyAuth: the binary with a user made by `resumeproxy passwd`:
// curl without credentials gets 407, with them the file; `passwd --help`
// exits 0.
func TestE2EProxyAuth(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	if _, _, code := runBinary(t, nil, "passwd", "--help"); code != 0 {
		t.Errorf("resumeproxy passwd --help: exit %d, want 0", code)
	}
	cmd := exec.Command(proxyBinary(t), "passwd", "--cost", "4", "alice")
	cmd.Env, cmd.Stdin = cleanEnv(), strings.NewReader("wonderland\n")
	line, err := cmd.Output()
	if err != nil {
		t.Fatalf("resumeproxy passwd alice: %v", err)
	}
	cfg := writeFile(t, "c.yaml", "auth:\n  users:\n    "+string(line))
	o := testorigin.New(t)
	o.Set("/f", testorigin.Resource{Size: 1 << 20, Validators: testorigin.StrongETag, CacheControl: cacheFor})
	p := startProxy(t, t.TempDir(), "--config", cfg)
	out := filepath.Join(t.TempDir(), "f")
	for _, c := range []struct {
		args []string
		want int
	}{
		{nil, http.StatusProxyAuthRequired},
		{[]string{"--proxy-user", "alice:nope"}, http.StatusProxyAuthRequired},
		{[]string{"--proxy-user", "alice:wonderland"}, http.StatusOK},
	} {
		hdr := filepath.Join(t.TempDir(), "h")
		r := curl(t, p, clientTimeout, append(c.args, o.URL+"/f", "-o", out, "-D", hdr)...)
		if status, _, dump := readHeaderDump(t, hdr); status != c.want {
			t.Errorf("curl %q: status %d, want %d\n%v\n%s", c.args, status, c.want, r, dump)
		}
	}
	if got := fileSize(t, out); got != 1<<20 {
		t.Errorf("downloaded %d bytes, want %d", got, 1<<20)
	}
	if strings.Contains(p.log(), "wonderland") {
		t.Errorf("the proxy logged the password:\n%s", p.log())
	}
}
