package main

import "testing"

// Each subcommand is registered under the name its command answers to.
func TestSubcommandNames(t *testing.T) {
	for name, mk := range subcommands {
		if got := mk().Name(); got != name {
			t.Errorf("subcommands[%q] builds %q", name, got)
		}
	}
}
