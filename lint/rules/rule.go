// Package rules holds the secret-detection rules and the engine that runs
// them over byte streams.
//
// The rules live in rules.yaml, embedded in the binary and compiled on first
// use (sync.Once): lint shares a binary with the container ENTRYPOINT wrapper,
// whose start-up must not pay for compiling a few hundred regular expressions.
package rules

import (
	_ "embed"
	"fmt"
	"path"
	"regexp"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

//go:embed rules.yaml
var rulesYAML []byte

// Severity orders findings for --fail-on.
type Severity int

// Severities, lowest first.
const (
	Low Severity = iota + 1
	Medium
	High
	Critical
)

var severityNames = map[string]Severity{"low": Low, "medium": Medium, "high": High, "critical": Critical}

// ParseSeverity reads "low", "medium", "high" or "critical".
func ParseSeverity(s string) (Severity, error) {
	if v, ok := severityNames[strings.ToLower(s)]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("unknown severity %q: want low, medium, high or critical", s)
}

func (s Severity) String() string {
	for k, v := range severityNames {
		if v == s {
			return k
		}
	}
	return "unknown"
}

// Rule is one entry of rules.yaml.
type Rule struct {
	ID          string   `yaml:"id"`
	Description string   `yaml:"description"`
	SeverityStr string   `yaml:"severity"`
	Keywords    []string `yaml:"keywords"`
	Regex       string   `yaml:"regex"`
	// Group is the capture group holding the secret; 0 (default) means the
	// first group when the regex has one, else the whole match.
	Group int `yaml:"group"`
	// Entropy is the minimum Shannon entropy (bits per byte) of the secret.
	Entropy float64 `yaml:"entropy"`
	// Validate names a format check (see validate.go) a match must pass.
	Validate string `yaml:"validate"`
	// Files restricts the rule to files whose name matches one of these
	// globs: a glob without "/" matches the base name, one with "/" matches
	// the end of the path (".aws/credentials").
	Files []string `yaml:"files"`
	// Magic (hex) makes a file-only rule (no regex) require this prefix.
	Magic string `yaml:"magic"`
	// NoPlaceholderCheck keeps values such as "example" for rules whose
	// format already excludes them.
	NoPlaceholderCheck bool `yaml:"no_placeholder_check"`
	// Multiline lets the regex see up to 64 KiB after the keyword instead
	// of the rest of the keyword's line (PEM blocks, JSON documents).
	Multiline bool   `yaml:"multiline"`
	Fix       string `yaml:"fix"`
	// Behind is how many bytes before its keyword a match may start
	// (default 8: a boundary character, "-----" or "https://"). A small
	// window keeps the regex work per keyword hit short.
	Behind int `yaml:"behind"`
	// Anchor says a match starts at its keyword: the regex is then tried
	// at the keyword only, not at every position of the line, which is
	// what keeps keyword-dense text (source code full of "token") fast.
	Anchor bool `yaml:"anchor"`
	// Precheck names a cheap test (prechecks in validate.go) run at a
	// keyword hit before the regex, for keywords that are common in
	// ordinary text ("://", "pat").
	Precheck string `yaml:"precheck"`
	// ByName marks a rule that finds a value by the name before it
	// (PASSWORD=..., "secret": ...): the value is then judged as a value
	// (a path, a URL without credentials, a reference is no secret) and
	// a name that refers to a secret (DB_PASSWORD_FILE, secretName) is
	// no assignment of one.
	ByName bool `yaml:"by_name"`

	Severity Severity       `yaml:"-"`
	re       *regexp.Regexp // nil for file-only rules
	anchored *regexp.Regexp // "^(?:" + Regex + ")", for Anchor rules
	group    int
	idx      int // position in the engine's rule list
}

// FileOnly reports whether the rule flags a file by name (and magic) alone,
// e.g. a PKCS#12 keystore, without looking for a value inside it.
func (r *Rule) FileOnly() bool { return r.Regex == "" }

// MatchesFile reports whether a path-restricted rule applies to name.
func (r *Rule) MatchesFile(name string) bool {
	if len(r.Files) == 0 {
		return true
	}
	base := path.Base(name)
	for _, g := range r.Files {
		if strings.Contains(g, "/") {
			if strings.HasSuffix(name, g) || name == strings.TrimPrefix(g, "/") {
				return true
			}
			continue
		}
		if ok, _ := path.Match(g, base); ok {
			return true
		}
	}
	return false
}

var (
	loadOnce sync.Once
	loaded   []*Rule
	loadErr  error
)

// All returns the compiled rules. The first call parses and compiles them.
func All() ([]*Rule, error) {
	loadOnce.Do(func() { loaded, loadErr = parse(rulesYAML) })
	return loaded, loadErr
}

func parse(data []byte) ([]*Rule, error) {
	var doc struct {
		Rules []*Rule `yaml:"rules"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("rules.yaml: %w", err)
	}
	seen := map[string]bool{}
	for i, r := range doc.Rules {
		if r.ID == "" || seen[r.ID] {
			return nil, fmt.Errorf("rules.yaml: rule %d: missing or duplicate id %q", i, r.ID)
		}
		seen[r.ID] = true
		sev := r.SeverityStr
		if sev == "" {
			sev = "high"
		}
		s, err := ParseSeverity(sev)
		if err != nil {
			return nil, fmt.Errorf("rules.yaml: rule %s: %w", r.ID, err)
		}
		r.Severity = s
		if r.Behind == 0 {
			r.Behind = 8
		}
		if r.Regex == "" {
			if len(r.Files) == 0 {
				return nil, fmt.Errorf("rules.yaml: rule %s: neither regex nor files", r.ID)
			}
			continue
		}
		if len(r.Keywords) == 0 && len(r.Files) == 0 {
			return nil, fmt.Errorf("rules.yaml: rule %s: a content rule needs keywords or files (the prefilter)", r.ID)
		}
		re, err := regexp.Compile(r.Regex)
		if err != nil {
			return nil, fmt.Errorf("rules.yaml: rule %s: %w", r.ID, err)
		}
		r.re = re
		if r.Anchor {
			r.anchored = regexp.MustCompile("^(?:" + r.Regex + ")")
		}
		r.group = 0
		if re.NumSubexp() > 0 {
			r.group = 1
		}
		if r.Group > 0 {
			if r.Group > re.NumSubexp() {
				return nil, fmt.Errorf("rules.yaml: rule %s: group %d but regex has %d", r.ID, r.Group, re.NumSubexp())
			}
			r.group = r.Group
		}
		if r.Precheck != "" && prechecks[r.Precheck] == nil {
			return nil, fmt.Errorf("rules.yaml: rule %s: unknown precheck %q", r.ID, r.Precheck)
		}
		if r.Validate != "" && validators[r.Validate] == nil {
			return nil, fmt.Errorf("rules.yaml: rule %s: unknown validator %q", r.ID, r.Validate)
		}
	}
	return doc.Rules, nil
}

// Literal returns a rule that finds exactly value (used for --known-secrets:
// the value is the keyword and the whole pattern, and no filter applies).
func Literal(id, description string, value []byte) *Rule {
	return &Rule{
		ID: id, Description: description, SeverityStr: "critical", Severity: Critical,
		Keywords: []string{string(value)}, Regex: regexp.QuoteMeta(string(value)),
		NoPlaceholderCheck: true, re: regexp.MustCompile(regexp.QuoteMeta(string(value))),
	}
}
