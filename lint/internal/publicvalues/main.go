// Command publicvalues prints, for every finding under the given
// directories, the line lint/rules/public_values.txt needs to treat it as
// published: `go run ./lint/internal/publicvalues DIR... >> lint/rules/public_values.txt`.
// Run it only over software whose secrets are public by design (a
// distribution's libraries, a toolchain's test data), never over your own.
package main

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/secretbroker/secretbroker/lint/rules"
	"github.com/secretbroker/secretbroker/lint/scan"
)

func main() {
	e, err := rules.Default()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	seen := map[string]string{}
	for _, dir := range os.Args[1:] {
		s := scan.New(e)
		s.FS(context.Background(), dir, dir, nil)
		for _, f := range s.Result().Findings {
			if len(f.Secret) == 0 {
				continue
			}
			h := rules.ValueHash(f.Secret.Reveal())
			if _, ok := seen[h]; !ok {
				seen[h] = fmt.Sprintf("%s  %s  %s/%s", h, f.RuleID, dir, f.Path)
			}
		}
	}
	var lines []string
	for _, l := range seen {
		lines = append(lines, l)
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
}
