package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/resumeproxy/resumeproxy/internal/config"
	"github.com/resumeproxy/resumeproxy/internal/keyrule"
)

// rulesUsage is the synopsis of the rules subcommand.
const rulesUsage = "usage: resumeproxy rules test [--config FILE] URL"

// runRules runs "resumeproxy rules test [--config FILE] URL": it prints how
// the cache keys URL under the configured key rules, so an operator can
// check a rule before relying on it. Nothing is fetched.
func runRules(args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("resumeproxy rules test", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() {
		fmt.Fprintln(stderr, rulesUsage+"\n\nPrints the cache key URL gets, the key rule that matched (the X-Cache-Key-Rule\n"+
			"header), the signature parameters left out of the key, the digest, and whether\nthe file counts as immutable. Nothing is fetched.\n\nFlags:")
		fset.PrintDefaults()
	}
	cfgPath := fset.String("config", "", "YAML configuration `file` whose rules and builtin_rules apply (default: built-ins only)")
	target, err := parseRulesArgs(fset, args)
	if err != nil {
		return err
	}
	rules, err := loadKeyRules(*cfgPath)
	if err != nil {
		return err
	}
	return printKey(stdout, target, rules.Key(target))
}

// parseRulesArgs parses "test URL" with flags anywhere among them.
func parseRulesArgs(fset *flag.FlagSet, args []string) (*url.URL, error) {
	var rest []string
	for {
		if err := fset.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		if fset.NArg() == 0 {
			break
		}
		rest, args = append(rest, fset.Arg(0)), fset.Args()[1:]
	}
	switch {
	case len(rest) == 0 || rest[0] != "test":
		return nil, usageError{errors.New(rulesUsage)}
	case len(rest) != 2:
		return nil, usageError{fmt.Errorf("rules test: want one URL, got %d arguments; %s", len(rest)-1, rulesUsage)}
	}
	return parseTarget(rest[1])
}

// parseTarget parses an absolute http or https URL, as a proxy request names.
func parseTarget(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, usageError{fmt.Errorf("rules test: %w", err)}
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, usageError{fmt.Errorf("rules test: %q: want an absolute http:// or https:// URL", s)}
	case u.Host == "":
		return nil, usageError{fmt.Errorf("rules test: %q: no host", s)}
	}
	return u, nil
}

// loadKeyRules compiles the key rules of the config file at path (the
// defaults when path is ""). Only the key rules are checked: the command
// neither serves nor opens the cache.
func loadKeyRules(path string) (*keyrule.Rules, error) {
	cfg := config.Default()
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return nil, usageError{err}
		}
	}
	rules, err := cfg.KeyRules()
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", path, err)}
	}
	return rules, nil
}

// printKey writes r as one "field: value" line per field.
func printKey(w io.Writer, u *url.URL, r keyrule.Result) error {
	rule, digest, signed := r.Rule, r.Digest.String(), "no"
	if rule == "" {
		rule = "none"
	}
	if digest == "" {
		digest = "none"
	}
	if r.Signed {
		signed = "yes: stored bytes are served only after the upstream accepts the request's own URL"
	}
	stripped := strings.Join(r.Stripped, ", ")
	if stripped == "" {
		stripped = "none"
	}
	immutable := "no"
	if r.Immutable {
		immutable = "yes: storable and resumable without validators, never revalidated"
	}
	_, err := fmt.Fprintf(w, "url:       %s\nkey:       %s\nrule:      %s\nsigned:    %s\nstripped:  %s\ndigest:    %s\nimmutable: %s\n",
		u, r.Key, rule, signed, stripped, digest, immutable)
	return err
}
