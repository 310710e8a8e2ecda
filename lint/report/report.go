// Package report writes scan results as text (for people), JSON (for
// scripts) and SARIF 2.1.0 (for code-scanning UIs). No format ever carries
// more of a secret than its preview: the first four characters and the
// length; known secrets are named, never previewed.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/secretbroker/secretbroker/lint/rules"
	"github.com/secretbroker/secretbroker/lint/scan"
)

// Formats accepted by --format.
var Formats = []string{"text", "json", "sarif"}

// Write renders res in format to w; version names the tool version in SARIF.
func Write(w io.Writer, format string, res *scan.Result, version string) error {
	switch format {
	case "text", "":
		return Text(w, res)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		out := struct {
			*scan.Result
			Incomplete bool `json:"incomplete"`
		}{res, res.Incomplete()}
		if out.Findings == nil {
			out.Findings = []scan.Finding{}
		}
		return enc.Encode(out)
	case "sarif":
		return SARIF(w, res, version)
	}
	return fmt.Errorf("unknown format %q: want %s", format, strings.Join(Formats, ", "))
}

// Text groups findings by target and layer.
func Text(w io.Writer, res *scan.Result) error {
	var b strings.Builder
	lastTarget, lastGroup := "", ""
	for _, f := range res.Findings {
		if f.Target != lastTarget {
			fmt.Fprintf(&b, "%s\n", f.Target)
			lastTarget, lastGroup = f.Target, ""
		}
		group := "  files"
		switch {
		case f.Layer > 0:
			group = fmt.Sprintf("  layer %d  %s", f.Layer, f.LayerDigest)
			if f.History > 0 {
				group += fmt.Sprintf("  (history step %d)", f.History)
			}
		case f.Status == scan.StatusConfig:
			group = "  image config and history"
		}
		if f.Image != "" {
			group += "  [" + f.Image
			if len(f.Platforms) > 0 {
				group += " " + strings.Join(f.Platforms, ", ")
			}
			group += "]"
		}
		if group != lastGroup {
			b.WriteString(group + "\n")
			lastGroup = group
		}
		loc := f.Path
		if f.Line > 0 {
			loc += fmt.Sprintf(":%d", f.Line)
		}
		what := f.Preview
		if f.KnownSecret != "" {
			what = "value of " + f.KnownSecret
		}
		st := f.Status
		if f.Class != "" && f.Class != scan.ClassSecret {
			st += "; " + f.Class
		}
		fmt.Fprintf(&b, "    %-8s %-28s %s  %s  (%s)\n", strings.ToUpper(f.SeverityStr), f.RuleID, loc, what, st)
		extra := f.Description
		if f.Note != "" {
			extra += "; " + f.Note
		}
		if f.Fix != "" {
			extra += "; fix: " + f.Fix
		}
		fmt.Fprintf(&b, "             %s\n", extra)
		if n := len(f.Locations); n > 0 {
			shown := f.Locations[:min(n, 3)]
			more := ""
			if n > len(shown) {
				more = fmt.Sprintf(" and %d more", n-len(shown))
			}
			fmt.Fprintf(&b, "             same value also at: %s%s\n", strings.Join(shown, ", "), more)
		}
	}
	if len(res.Skips) > 0 {
		b.WriteString("skipped (reported, not silently ignored):\n")
		for _, s := range res.Skips {
			mark := ""
			if s.Incomplete {
				mark = " [scan incomplete]"
			}
			fmt.Fprintf(&b, "  %s %s: %s%s\n", s.Target, s.Path, s.Reason, mark)
		}
	}
	if len(res.Errors) > 0 {
		b.WriteString("errors (the scan is incomplete):\n")
		for _, e := range res.Errors {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	counts := map[string]int{}
	for _, f := range res.Findings {
		counts[f.SeverityStr]++
	}
	var parts []string
	for _, s := range []string{"critical", "high", "medium", "low"} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	state := "scan complete"
	if res.Incomplete() {
		state = "SCAN INCOMPLETE"
	}
	if len(parts) == 0 {
		fmt.Fprintf(&b, "no secrets found; %s\n", state)
	} else {
		fmt.Fprintf(&b, "%d finding(s): %s; %s\n", len(res.Findings), strings.Join(parts, ", "), state)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// SARIF writes a SARIF 2.1.0 log: one run, the rules that fired, one result
// per finding with a stable fingerprint, and skipped items and errors as
// tool execution notifications (they are not findings).
func SARIF(w io.Writer, res *scan.Result, version string) error {
	index := map[string]int{}
	var sr []map[string]any
	var results []map[string]any
	for _, f := range res.Findings {
		i, ok := index[f.RuleID]
		if !ok {
			i = len(sr)
			index[f.RuleID] = i
			rule := map[string]any{
				"id":                   f.RuleID,
				"name":                 ruleName(f.RuleID),
				"shortDescription":     map[string]any{"text": f.Description},
				"defaultConfiguration": map[string]any{"level": level(f.Severity)},
				"properties": map[string]any{
					"tags":              []string{"security", "secret"},
					"security-severity": securitySeverity(f.Severity),
				},
			}
			if f.Fix != "" {
				rule["help"] = map[string]any{"text": f.Fix}
			}
			sr = append(sr, rule)
		}
		msg := fmt.Sprintf("%s (%s) in %s", f.Description, f.Preview, f.Path)
		if f.KnownSecret != "" {
			msg = fmt.Sprintf("the value of secret %q in %s", f.KnownSecret, f.Path)
		}
		msg += "; " + f.Status
		if f.Layer > 0 {
			msg += fmt.Sprintf("; layer %d %s", f.Layer, f.LayerDigest)
		}
		loc := map[string]any{}
		if f.Status != scan.StatusConfig {
			phys := map[string]any{"artifactLocation": map[string]any{"uri": uri(f.Path)}}
			if f.Line > 0 {
				phys["region"] = map[string]any{"startLine": f.Line}
			}
			loc["physicalLocation"] = phys
		}
		logical := []map[string]any{{"name": f.Target, "kind": "module"}}
		if f.Layer > 0 {
			logical = append(logical, map[string]any{"name": f.LayerDigest, "fullyQualifiedName": fmt.Sprintf("%s/layer/%d", f.Target, f.Layer), "kind": "module"})
		}
		if f.Status == scan.StatusConfig {
			logical = append(logical, map[string]any{"name": f.Path, "kind": "member"})
		}
		loc["logicalLocations"] = logical
		props := map[string]any{"status": f.Status, "class": f.Class}
		if len(f.Locations) > 0 {
			props["otherLocations"] = f.Locations
		}
		if f.Image != "" {
			props["image"] = f.Image
		}
		results = append(results, map[string]any{
			"ruleId":              f.RuleID,
			"ruleIndex":           i,
			"level":               resultLevel(f),
			"message":             map[string]any{"text": msg},
			"locations":           []any{loc},
			"partialFingerprints": map[string]any{"secretLocation/v1": f.Fingerprint},
			"properties":          props,
		})
	}
	var notes []map[string]any
	for _, s := range res.Skips {
		lvl := "note"
		if s.Incomplete {
			lvl = "warning"
		}
		notes = append(notes, map[string]any{
			"level":   lvl,
			"message": map[string]any{"text": fmt.Sprintf("skipped %s in %s: %s", s.Path, s.Target, s.Reason)},
		})
	}
	for _, e := range res.Errors {
		notes = append(notes, map[string]any{"level": "error", "message": map[string]any{"text": e}})
	}
	if results == nil {
		results = []map[string]any{}
	}
	if sr == nil {
		sr = []map[string]any{}
	}
	inv := map[string]any{"executionSuccessful": !res.Incomplete()}
	if len(notes) > 0 {
		inv["toolExecutionNotifications"] = notes
	}
	log := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name":           "inject lint",
				"informationUri": "https://github.com/secretbroker/secretbroker",
				"version":        version,
				"rules":          sr,
			}},
			"invocations": []any{inv},
			"results":     results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

// resultLevel is the severity's level for class secret; fixture and
// shipped findings are notes.
func resultLevel(f scan.Finding) string {
	if f.Class != "" && f.Class != scan.ClassSecret {
		return "note"
	}
	return level(f.Severity)
}

func uri(p string) string {
	// A member of an archive is named as jar!member, so that a
	// code-scanning UI does not put the member's line on the archive.
	return strings.NewReplacer(" ", "%20", "#", "%23", "?", "%3F", "[", "%5B", "]", "%5D").Replace(p)
}

func ruleName(id string) string {
	parts := strings.Split(id, "-")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "")
}

func level(s rules.Severity) string {
	if s >= rules.High {
		return "error"
	}
	if s == rules.Medium {
		return "warning"
	}
	return "note"
}

func securitySeverity(s rules.Severity) string {
	return map[rules.Severity]string{rules.Critical: "9.5", rules.High: "8.0", rules.Medium: "5.5", rules.Low: "3.0"}[s]
}
