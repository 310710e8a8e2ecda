// Package suggest finds what a mistyped word was meant to be, for the
// "did you mean" of subcommands, flags and declaration keys. It uses
// cobra's own matcher (the one behind cobra's "Did you mean this?"), so
// every suggestion the programs make follows one rule: Levenshtein
// distance 2 or less, or a prefix either way (`enviroment` for `env`).
package suggest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// Names returns the candidates close to typed, in candidates' order.
func Names(typed string, candidates []string) []string {
	c := &cobra.Command{Use: "suggest", SuggestionsMinimumDistance: 2} // cobra's default when it suggests
	for _, name := range candidates {
		c.AddCommand(&cobra.Command{Use: name, Run: func(*cobra.Command, []string) {}})
	}
	out := c.SuggestionsFor(typed)
	for _, name := range candidates {
		// cobra finds "env" for "en"; a key written out in full
		// ("environment") is the other way round.
		if len(name) >= 3 && strings.HasPrefix(strings.ToLower(typed), strings.ToLower(name)) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// DidYouMean is "; did you mean X?" for the suggestions, each formatted
// by format (such as "--%s"), or "" when there are none.
func DidYouMean(suggestions []string, format string) string {
	if len(suggestions) == 0 {
		return ""
	}
	quoted := make([]string, len(suggestions))
	for i, s := range suggestions {
		quoted[i] = fmt.Sprintf(format, s)
	}
	return "; did you mean " + strings.Join(quoted, " or ") + "?"
}
