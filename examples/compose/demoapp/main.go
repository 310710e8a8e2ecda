// Command demoapp is the example app of examples/compose: it reads its
// secret from $DB_PASSWORD_FILE when it starts and again on SIGHUP, and
// prints a short SHA-256 of it (never the value), so the walkthrough and
// the end-to-end test can see which version it holds.
package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	path := os.Getenv("DB_PASSWORD_FILE")
	if path == "" {
		fmt.Println("DB_PASSWORD_FILE is not set")
		os.Exit(64)
	}
	load := func(why string) {
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Printf("%s: cannot read the secret: %v\n", why, err)
			os.Exit(1)
		}
		_, rerr := os.Stat(filepath.Join(filepath.Dir(path), ".ready"))
		sum := sha256.Sum256(b)
		clear(b)
		fmt.Printf("%s: secret sha256=%x ready_marker=%t pid=%d\n", why, sum[:8], rerr == nil, os.Getpid())
	}
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	load("started")
	for s := range ch {
		if s == syscall.SIGHUP {
			load("reloaded")
			continue
		}
		fmt.Println("stopping on", s)
		return
	}
}
