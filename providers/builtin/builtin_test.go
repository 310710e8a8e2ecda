package builtin_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/secretbroker/secretbroker/providers"
)

// every is each scheme a full build carries; built holds those this build
// carries (each provider's built_*_test.go adds its own under its tag).
var (
	every = []string{"aws-sm", "file", "op", "vault"}
	built = map[string]bool{"file": true}
)

// TestRegistered checks that a provider left out by a build tag (novault,
// noawssm, noonepassword) leaves nothing of its scheme behind: no grammar,
// no environment reference, no consumed credential, no policy command.
// Run it under each tag: go test -tags novault ./providers/builtin.
func TestRegistered(t *testing.T) {
	var want []string
	for _, sc := range every {
		if built[sc] {
			want = append(want, sc)
		}
	}
	if got := providers.Registered(); !slices.Equal(got, want) {
		t.Fatalf("registered %v, want %v", got, want)
	}
	for _, sc := range every {
		reg, ok := providers.Lookup(sc)
		if built[sc] {
			if !ok || reg.Scheme != sc || reg.Block == "" || reg.New == nil {
				t.Errorf("%s: registration incomplete: %+v", sc, reg)
			}
			continue
		}
		if providers.KnownScheme(sc) || slices.Contains(providers.Schemes(), sc) || slices.Contains(providers.EnvSchemes(), sc) {
			t.Errorf("%s is left out of this build, yet still known", sc)
		}
		if got := providers.ConsumedEnv(sc); got != nil {
			t.Errorf("%s is left out of this build, yet its credentials %v are still stripped", sc, got)
		}
		if _, err := providers.ParseRef(sc + "://a/b/c"); err == nil || !strings.Contains(err.Error(), "unknown scheme") {
			t.Errorf("%s://a/b/c parses in a build without it: %v", sc, err)
		}
	}
	// file:// values in the environment are ordinary URLs.
	if slices.Contains(providers.EnvSchemes(), "file") {
		t.Error("file is an environment scheme by default")
	}
}
