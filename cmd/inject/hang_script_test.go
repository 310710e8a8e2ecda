//go:build !novault

package main

import (
	"net"

	"github.com/rogpeppe/go-internal/testscript"
)

func init() { scriptCmds["hangsrv"] = hangsrv }

// hangsrv listens on a local port that accepts connections and never
// answers, for the rest of the script, and sets HANG_ADDR to its http://
// address: a provider pointed at it hangs until --timeout.
func hangsrv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: hangsrv")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	ts.Defer(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	ts.Setenv("HANG_ADDR", "http://"+l.Addr().String())
}
