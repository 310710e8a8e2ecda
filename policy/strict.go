package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/secretbroker/secretbroker/internal/suggest"
)

// MaxBytes caps a policy file. A policy is a few lines; anything larger is
// refused rather than read.
const MaxBytes = 64 << 10

// keys are a policy's keys and the shape each value must have.
var keys = map[string]string{
	"allow":                     "list",
	"deny":                      "list",
	"dirs":                      "list",
	"allow_env_exposure":        "bool",
	"allow_disk":                "bool",
	"max_secret_bytes":          "int",
	"run_as_non_root":           "bool",
	"require_no_new_privileges": "bool",
}

// StrictError is a policy file refused by the strict reader: Rule says
// which rule, Line where (0 when it is about the whole file).
type StrictError struct {
	Source string
	Line   int
	Rule   string
}

func (e *StrictError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("policy %s line %d: %s", e.Source, e.Line, e.Rule)
	}
	return fmt.Sprintf("policy %s: %s", e.Source, e.Rule)
}

// strict checks that b is a policy whose effect cannot be misread: one
// YAML document whose root is a mapping of known keys, each once, each
// value of its shape written plainly (true/false, decimal numbers, lists
// of strings), with no anchors, aliases, merge keys or tags. It returns
// the document's root (nil for an empty file).
func strict(source string, b []byte) (*yaml.Node, error) {
	fail := func(line int, format string, args ...any) error {
		return &StrictError{Source: source, Line: line, Rule: fmt.Sprintf(format, args...)}
	}
	if len(b) > MaxBytes {
		return nil, fail(0, "is %d bytes, over the %d-byte limit for a policy", len(b), MaxBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fail(0, "not valid YAML: %v", err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		line := more.Line
		if err != nil {
			line = 0
		}
		return nil, fail(line, "more than one YAML document (---); a policy is one document")
	}
	if err := plain(&doc, fail); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fail(root.Line, "the file must be a mapping of policy keys (allow:, deny:, ...), not a %s", kindName(root))
	}
	seen := map[string]int{}
	known := make([]string, 0, len(keys))
	for k := range keys {
		known = append(known, k)
	}
	slices.Sort(known)
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
			return nil, fail(k.Line, "a key must be a plain name")
		}
		if first, dup := seen[k.Value]; dup {
			return nil, fail(k.Line, "key %q appears twice (first at line %d); which one applies would be a guess", k.Value, first)
		}
		seen[k.Value] = k.Line
		shape, ok := keys[k.Value]
		if !ok {
			return nil, fail(k.Line, "unknown key %q%s (known: %v)", k.Value, suggest.DidYouMean(suggest.Names(k.Value, known), "%q"), known)
		}
		if err := shaped(k.Value, shape, v, fail); err != nil {
			return nil, err
		}
	}
	return root, nil
}

// plain refuses anchors, aliases, merge keys and explicit tags anywhere.
func plain(n *yaml.Node, fail func(int, string, ...any) error) error {
	switch {
	case n.Kind == yaml.AliasNode:
		return fail(n.Line, "alias *%s: aliases are not allowed in a policy; write the value out", n.Value)
	case n.Anchor != "":
		return fail(n.Line, "anchor &%s: anchors are not allowed in a policy", n.Anchor)
	case n.Style&yaml.TaggedStyle != 0:
		return fail(n.Line, "tag %s: tags are not allowed in a policy", n.Tag)
	case n.Kind == yaml.ScalarNode && n.Tag == "!!merge":
		return fail(n.Line, "merge key <<: not allowed in a policy")
	}
	for _, c := range n.Content {
		if err := plain(c, fail); err != nil {
			return err
		}
	}
	return nil
}

func shaped(key, shape string, v *yaml.Node, fail func(int, string, ...any) error) error {
	switch shape {
	case "list":
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			return nil
		}
		if v.Kind != yaml.SequenceNode {
			return fail(v.Line, "%s: want a list of strings, got a %s", key, kindName(v))
		}
		for _, e := range v.Content {
			if e.Kind != yaml.ScalarNode || e.Tag != "!!str" {
				return fail(e.Line, "%s: each entry must be a string (quote it), got a %s", key, kindName(e))
			}
		}
	case "bool":
		if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" || (v.Value != "true" && v.Value != "false") {
			return fail(v.Line, "%s: want true or false, got %q", key, v.Value)
		}
	case "int":
		if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || !decimal(v.Value) {
			return fail(v.Line, "%s: want a plain decimal number of bytes, got %q", key, v.Value)
		}
	}
	return nil
}

// decimal is digits with no sign, base prefix, separator or leading zero.
func decimal(s string) bool {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	switch n.Tag {
	case "!!str":
		return "string"
	case "!!int", "!!float":
		return "number"
	case "!!bool":
		return "boolean"
	case "!!null":
		return "empty value"
	}
	return "scalar"
}
