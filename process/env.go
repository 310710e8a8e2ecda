// Package process starts the app: by default syscall.Exec, so the app
// replaces inject and nothing is left running; with Supervise, inject stays
// as PID 1 and behaves as tini does. It also builds the app's environment
// and drops privileges to --user.
package process

import (
	"fmt"
	"sort"
	"strings"
)

// EnvPlan says how to turn inject's environment into the app's.
type EnvPlan struct {
	Base   []string          // inject's environment
	Remove map[string]bool   // variables to drop (references, the credentials providers consumed, INJECT_*, strip_env)
	Set    map[string]string // variables to add (NAME_FILE paths, expose_as values)
	// StillRef reports whether a value still reads as a reference after
	// resolution; such a value is an error, never passed on.
	StillRef func(string) bool
}

// Build returns the app's environment, or an error naming each variable
// that still holds a reference (fail closed). Values are never quoted in
// the error.
func (p EnvPlan) Build() ([]string, error) {
	out := make([]string, 0, len(p.Base)+len(p.Set))
	var bad []string
	for _, kv := range p.Base {
		k, v, _ := strings.Cut(kv, "=")
		if p.Remove[k] || strings.HasPrefix(k, "INJECT_") {
			continue
		}
		if _, over := p.Set[k]; over {
			continue
		}
		if p.StillRef != nil && p.StillRef(v) {
			bad = append(bad, k)
			continue
		}
		out = append(out, kv)
	}
	keys := make([]string, 0, len(p.Set))
	for k := range p.Set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if p.StillRef != nil && p.StillRef(p.Set[k]) {
			bad = append(bad, k)
			continue
		}
		out = append(out, k+"="+p.Set[k])
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, fmt.Errorf("after resolution these variables still hold a secret reference, so the app would get a reference instead of a secret: %s", strings.Join(bad, ", "))
	}
	return out, nil
}
