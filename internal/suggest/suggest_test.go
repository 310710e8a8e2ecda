package suggest

import (
	"slices"
	"testing"
)

func TestNames(t *testing.T) {
	keys := []string{"name", "ref", "mode", "env", "expose_as", "optional"}
	for typed, want := range map[string]string{"mod": "mode", "nmae": "name", "optinal": "optional", "exposeas": "expose_as", "enviroment": "env", "references": "ref"} {
		if got := Names(typed, keys); !slices.Contains(got, want) {
			t.Errorf("Names(%q) = %v, want %s among them", typed, got, want)
		}
	}
	if got := Names("colour", keys); len(got) != 0 {
		t.Errorf("Names(colour) = %v", got)
	}
	if got := DidYouMean([]string{"a", "b"}, "--%s"); got != "; did you mean --a or --b?" {
		t.Errorf("DidYouMean = %q", got)
	}
	if DidYouMean(nil, "%s") != "" {
		t.Error("no suggestion, yet a hint")
	}
}
