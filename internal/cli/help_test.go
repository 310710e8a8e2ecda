package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestSuggest(t *testing.T) {
	names := []string{"check", "lint", "policy", "wait", "version", "help", "completion"}
	for typed, want := range map[string]string{"chek": "check", "lnit": "lint", "polcy": "policy", "verison": "version", "c": "check"} {
		if got := Suggest(typed, names); !slices.Contains(got, want) {
			t.Errorf("Suggest(%q) = %v, want %s among them", typed, got, want)
		}
	}
	if got := Suggest("nginx", names); len(got) != 0 {
		t.Errorf("Suggest(nginx) = %v", got)
	}
}

func TestFlagUsagesHidesBoolValues(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.Bool("dry-run", false, "print the plan")
	fs.String("dir", "/run/x", "the directory")
	out := flagUsages(fs)
	if strings.Contains(out, "true|false") || !strings.Contains(out, "--dry-run ") || !strings.Contains(out, "--dir string") {
		t.Fatalf("flag usages:\n%s", out)
	}
	// The flag still parses as a switch and with a value.
	if err := fs.Parse([]string{"--dry-run", "--dry-run=false"}); err != nil {
		t.Fatal(err)
	}
}

func TestHelpRequested(t *testing.T) {
	for args, want := range map[string]bool{
		"--help":                  true,
		"--config x -h":           true,
		"--version":               true,
		"app --help":              true, // the tree is built; --help still goes to the app
		"-- app --help":           false,
		"--config x -- /bin/true": false,
		"":                        false,
	} {
		if got := helpRequested(strings.Fields(args)); got != want {
			t.Errorf("helpRequested(%q) = %v", args, got)
		}
	}
}
