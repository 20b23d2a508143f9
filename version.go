package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// runVersion runs "resumeproxy version": what was built, from what, with
// what, as the Go toolchain stamped it in the binary, so that a bug report
// can name the exact commit.
func runVersion(args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("resumeproxy version", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: resumeproxy version\n\nPrints the version, the commit and the Go version the binary was built from.")
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fset.NArg() > 0 {
		return usageError{fmt.Errorf("version: unexpected argument %q", fset.Arg(0))}
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return errors.New("version: the binary carries no build information")
	}
	_, err := io.WriteString(stdout, versionText(bi))
	return err
}

// versionText formats what "resumeproxy version" prints: the module
// version ("(devel)" for a build from a work tree), then the VCS revision,
// its time and whether the tree had changes, when the build recorded them
// (go build in a git checkout does; go run and go test do not).
func versionText(bi *debug.BuildInfo) string {
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	var b strings.Builder
	fmt.Fprintf(&b, "resumeproxy %s\n", cmp.Or(bi.Main.Version, "(devel)"))
	if rev := settings["vcs.revision"]; rev != "" {
		if settings["vcs.modified"] == "true" {
			rev += " (modified)"
		}
		fmt.Fprintf(&b, "commit:  %s\n", rev)
	}
	if t := settings["vcs.time"]; t != "" {
		fmt.Fprintf(&b, "date:    %s\n", t)
	}
	fmt.Fprintf(&b, "go:      %s\n", bi.GoVersion)
	return b.String()
}
