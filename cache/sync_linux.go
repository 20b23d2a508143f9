package cache

import (
	"bytes"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// syncFS writes every dirty page of the filesystem holding dir to disk
// (syncfs): one call covers every body file, however many this run wrote.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cache: sync %s: %w", dir, err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("cache: sync %s: %w", dir, err)
	}
	return nil
}

// bootID names the running kernel's boot: it changes when the machine
// restarts, and only then.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}
