// Package suggest finds what a mistyped word was meant to be, for the
// "did you mean" of subcommands, flags and declaration keys. It uses
// cobra's own matcher (the one behind cobra's "Did you mean this?"), so
// every suggestion the programs make follows one rule: Levenshtein
// distance 2 or less, or a prefix.
package suggest

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// Names returns the candidates close to typed, in candidates' order.
func Names(typed string, candidates []string) []string {
	c := &cobra.Command{Use: "suggest", SuggestionsMinimumDistance: 2} // cobra's default when it suggests
	for _, name := range candidates {
		c.AddCommand(&cobra.Command{Use: name, Run: func(*cobra.Command, []string) {}})
	}
	return c.SuggestionsFor(typed)
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
