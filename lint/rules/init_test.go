package rules

import (
	"fmt"
	"os"
	"testing"
)

// TestMain checks, before any test runs, that importing the package compiled
// nothing: lint shares the ENTRYPOINT binary, whose start-up is benchmarked.
func TestMain(m *testing.M) {
	if loaded != nil || engine != nil || placeholderRe != nil {
		fmt.Fprintln(os.Stderr, "rules: compiled at package initialisation; it must wait for first use")
		os.Exit(1)
	}
	os.Exit(m.Run())
}
