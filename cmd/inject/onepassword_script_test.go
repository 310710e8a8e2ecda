//go:build !noonepassword

package main

import (
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/secretbroker/secretbroker/internal/testenv/opconnect"
)

func init() {
	// opconnect FIXTURE.json: start a 1Password Connect test server with
	// that content (see opconnect.Fixture) for the rest of the script, and
	// set OPCONNECT_URL to its address.
	scriptCmds["opconnect"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 1 {
			ts.Fatalf("usage: opconnect FIXTURE.json")
		}
		s, err := opconnect.FromJSON([]byte(ts.ReadFile(args[0])))
		ts.Check(err)
		ts.Defer(s.Close)
		ts.Setenv("OPCONNECT_URL", s.URL)
	}
}
