// Command testapp is the tiny static app the container tests run under
// inject. It proves what the app sees without printing a secret:
//
//	testapp read VAR     print the SHA-256 of the file $VAR points at, and
//	                     "env-clean" or "env-LEAK" (whether any environment
//	                     value contains the file's content)
//	testapp wait CODE    print "ready", then wait for SIGTERM and exit CODE
//	testapp ls DIR       print the names in DIR, one a line
//	testapp id           print uid:gid
package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testapp read VAR | wait CODE | ls DIR | id")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "read":
		path := os.Getenv(os.Args[2])
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Println("read-error:", err)
			os.Exit(1)
		}
		fmt.Printf("sha256=%x\n", sha256.Sum256(b))
		state := "env-clean"
		for _, kv := range os.Environ() {
			if _, v, _ := strings.Cut(kv, "="); len(b) > 0 && strings.Contains(v, string(b)) {
				state = "env-LEAK"
			}
		}
		fmt.Println(state)
		fmt.Printf("uid=%d gid=%d\n", os.Getuid(), os.Getgid())
	case "wait":
		code, _ := strconv.Atoi(os.Args[2])
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		fmt.Println("ready")
		<-ch
		fmt.Println("got SIGTERM")
		os.Exit(code)
	case "ls":
		entries, err := os.ReadDir(os.Args[2])
		if err != nil {
			fmt.Println("ls-error:", err)
			os.Exit(1)
		}
		for _, e := range entries {
			fmt.Println(e.Name())
		}
		fmt.Println("ls-done")
	case "id":
		fmt.Printf("%d:%d\n", os.Getuid(), os.Getgid())
	}
}
