package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/resumeproxy/resumeproxy/internal/access"
)

// passwdUsage is the synopsis of the passwd subcommand.
const passwdUsage = "usage: resumeproxy passwd [--cost N] [USER]"

// runPasswd runs "resumeproxy passwd [--cost N] [USER]": it reads a
// password and prints its bcrypt hash for auth.users in the config; with
// USER, as the whole line ("USER: HASH"). On a terminal the password is
// read twice without echo; otherwise it is the first line of stdin, so
// scripts can pipe it in (echo -n is not needed).
func runPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("resumeproxy passwd", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() {
		fmt.Fprintln(stderr, passwdUsage+"\n\nReads a password (from the terminal without echo, else the first line of stdin)\nand prints its bcrypt hash, to paste under auth.users in the config.\n\nFlags:")
		fset.PrintDefaults()
	}
	cost := fset.Int("cost", access.DefaultCost, "bcrypt `cost` (4..31); each step doubles the time of a check")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	user, err := passwdUser(fset.Args())
	if err != nil {
		return err
	}
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		return err
	}
	hash, err := access.Hash(pw, *cost)
	if err != nil {
		return usageError{fmt.Errorf("passwd: %w", err)}
	}
	return printHash(stdout, user, hash)
}

// passwdUser returns the optional USER argument, checked.
func passwdUser(args []string) (string, error) {
	switch {
	case len(args) == 0:
		return "", nil
	case len(args) > 1:
		return "", usageError{fmt.Errorf("unexpected argument %q; %s", args[1], passwdUsage)}
	}
	if err := access.CheckUserName(args[0]); err != nil {
		return "", usageError{err}
	}
	return args[0], nil
}

// readPassword reads the password: twice without echo from a terminal,
// else the first line of stdin (without its line ending).
func readPassword(stdin io.Reader, stderr io.Writer) ([]byte, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return readTerminalPassword(int(f.Fd()), stderr)
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("passwd: reading the password: %w", err)
	}
	return []byte(strings.TrimRight(line, "\r\n")), nil
}

// readTerminalPassword prompts on stderr and reads the password twice from
// the terminal fd without echo.
func readTerminalPassword(fd int, stderr io.Writer) ([]byte, error) {
	var pw [2][]byte
	for i, prompt := range []string{"Password: ", "Again: "} {
		fmt.Fprint(stderr, prompt)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, fmt.Errorf("passwd: reading the password: %w", err)
		}
		pw[i] = b
	}
	if string(pw[0]) != string(pw[1]) {
		return nil, usageError{errors.New("passwd: the passwords differ")}
	}
	return pw[0], nil
}

// printHash writes hash, or with a user the YAML line "user: hash" (quoted
// as YAML needs it) to put under auth.users.
func printHash(stdout io.Writer, user, hash string) error {
	if user == "" {
		_, err := fmt.Fprintln(stdout, hash)
		return err
	}
	line, err := yaml.Marshal(map[string]string{user: hash})
	if err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	_, err = stdout.Write(line)
	return err
}
