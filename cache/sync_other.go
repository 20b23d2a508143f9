//go:build !linux

package cache

import "syscall"

// syncFS writes every dirty page to disk; without syncfs, sync covers
// every filesystem.
func syncFS(string) error {
	syscall.Sync()
	return nil
}

// bootID is unknown here: every unclean end counts as a power loss.
func bootID() string { return "" }
