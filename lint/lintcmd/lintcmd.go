// Package lintcmd is the `inject lint` subcommand. The main CLI adds it with
// one line, root.AddCommand(lintcmd.Command()), and turns what Execute
// returns into the process exit code with ExitCode (an *ExitError carries
// 0, 1, 2 or 64). It may also set KnownSecretsLoader (for --known-secrets)
// and Version.
package lintcmd

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/secretbroker/secretbroker/lint/allow"
	"github.com/secretbroker/secretbroker/lint/dockerfile"
	"github.com/secretbroker/secretbroker/lint/report"
	"github.com/secretbroker/secretbroker/lint/rules"
	"github.com/secretbroker/secretbroker/lint/scan"
	"github.com/secretbroker/secretbroker/lint/source"
	"github.com/secretbroker/secretbroker/lint/walk"
)

// Exit codes (docs/reference.md, "inject lint").
const (
	ExitClean      = 0
	ExitFindings   = 1
	ExitIncomplete = 2
	ExitUsage      = 64
)

// ExitError carries the process exit code out of RunE.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode maps what a command returned to the process exit code: 0 for
// nil, the code of an *ExitError, and 64 (usage) for any other error, which
// cobra returns for unknown commands and malformed flags.
func ExitCode(err error) int {
	if err == nil {
		return ExitClean
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ExitUsage
}

// KnownSecret is one resolved secret of an inject spec.
type KnownSecret struct {
	Name  string
	Value []byte
}

// KnownSecretsLoader resolves the secrets of the spec at specPath through
// the providers. The main CLI sets it (lint does not import the providers);
// while it is nil, --known-secrets is a usage error.
var KnownSecretsLoader func(ctx context.Context, specPath string) ([]KnownSecret, error)

// Version is shown in SARIF output; the main CLI may set it.
var Version = "dev"

type options struct {
	format, output, failOn, baseline, config, knownSecrets string
	writeBaseline, gitStaged, suggestIgnore, quiet         bool
	maxDepth                                               int
	maxZipMiB, maxExpandFileMiB, maxExpandScanMiB          int64
	jobs                                                   int
}

// Command returns the `lint` subcommand.
func Command() *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "lint [flags] TARGET...",
		Short: "Prove an image or build context carries no baked-in secret",
		Long: `Scan container images and build contexts for secrets.

Targets (named as skopeo names them):
  docker-archive:PATH    a docker/podman save tarball
  oci:DIR[:TAG]          an OCI image layout directory
  oci-archive:PATH[:TAG] a tar of an OCI layout
  docker-daemon:REF      an image in the local Docker Engine
  docker://REF           an image in a registry (Docker config credentials)
  REF                    the local Docker Engine if it has it, else the registry
  fs:PATH                a plain directory or file
  dir:PATH               an image stored by skopeo as a directory of blobs
  dockerfile:PATH        a Dockerfile, its build context and .dockerignore

Exit codes: 0 clean, 1 findings at or above --fail-on, 2 the scan could not be
completed (corrupt layer, unreadable target, content skipped), 64 usage.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), cmd, o, args)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &ExitError{Code: ExitUsage, Err: err}
	})
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "text", "output format: text, json or sarif")
	f.StringVarP(&o.output, "output", "o", "", "write the report to `FILE` instead of standard output")
	f.StringVar(&o.failOn, "fail-on", "low", "lowest severity that makes the exit code 1 (low, medium, high, critical), and, comma-separated, the classes that fail besides secret (fixture, shipped, or all)")
	f.StringVar(&o.baseline, "baseline", "", "ignore findings recorded in this baseline `FILE`")
	f.BoolVar(&o.writeBaseline, "write-baseline", false, "record the current findings in the --baseline file and exit 0")
	f.StringVar(&o.config, "config", "", "allow rules `FILE` (YAML: allow: [{paths, rules, fingerprints, reason, expires}])")
	f.StringVar(&o.knownSecrets, "known-secrets", "", "resolve the secrets of this inject `SPEC` and search for their values")
	f.BoolVar(&o.gitStaged, "git-staged", false, "scan the files staged for the next git commit")
	f.BoolVar(&o.suggestIgnore, "suggest-ignore", false, "for dockerfile: targets, print .dockerignore lines that keep flagged files out")
	f.IntVar(&o.maxDepth, "max-depth", walk.DefaultLimits.MaxDepth, "how many archives deep to read nested archives")
	f.Int64Var(&o.maxZipMiB, "max-zip-size", walk.DefaultLimits.MaxZipBytes>>20, "largest zip/jar (MiB) opened in memory")
	f.Int64Var(&o.maxExpandFileMiB, "max-expand-file", walk.DefaultLimits.MaxFileExpandBytes>>20, "most bytes (MiB) decompressed from one top-level file (nested archives together)")
	f.Int64Var(&o.maxExpandScanMiB, "max-expand-scan", walk.DefaultLimits.MaxScanExpandBytes>>20, "most bytes (MiB) decompressed from nested archives in the whole scan")
	f.IntVar(&o.jobs, "jobs", 0, "layers read in parallel (default: number of CPUs)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress line on a terminal (none is drawn when stderr is not a terminal)")
	return cmd
}

func usage(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

func run(ctx context.Context, cmd *cobra.Command, o options, targets []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if len(targets) == 0 && !o.gitStaged {
		return usage("lint: give at least one TARGET (or --git-staged); see inject lint --help")
	}
	if !slices.Contains(report.Formats, o.format) {
		return usage("lint: --format %q: want text, json or sarif", o.format)
	}
	failOn, failClasses, err := parseFailOn(o.failOn)
	if err != nil {
		return usage("lint: --fail-on: %v", err)
	}
	if o.writeBaseline && o.baseline == "" {
		return usage("lint: --write-baseline needs --baseline FILE to write to")
	}
	for _, t := range targets {
		if _, rest := source.Split(t); rest == "" {
			return usage("lint: target %q names no path or reference", t)
		}
		if err := source.CheckTransport(t); err != nil {
			return usage("lint: %v", err)
		}
	}
	var cfg *allow.Config
	if o.config != "" {
		if cfg, err = allow.LoadConfig(o.config); err != nil {
			return usage("lint: %v", err)
		}
	}
	var base *allow.Baseline
	if o.baseline != "" && !o.writeBaseline {
		if base, err = allow.LoadBaseline(o.baseline); err != nil {
			return usage("lint: --baseline: %v", err)
		}
	}
	eng, err := rules.Default()
	if err != nil {
		return &ExitError{Code: ExitIncomplete, Err: err}
	}
	known := map[string]string{}
	if o.knownSecrets != "" {
		if KnownSecretsLoader == nil {
			return usage("lint: --known-secrets is not available in this build")
		}
		secrets, err := KnownSecretsLoader(ctx, o.knownSecrets)
		if err != nil {
			return &ExitError{Code: ExitIncomplete, Err: fmt.Errorf("lint: --known-secrets %s: %w", o.knownSecrets, err)}
		}
		rs, _ := rules.All()
		extra := knownRules(secrets, known, cmd.ErrOrStderr())
		if eng, err = rules.New(append(append([]*rules.Rule{}, rs...), extra...)); err != nil {
			return &ExitError{Code: ExitIncomplete, Err: err}
		}
	}

	s := scan.New(eng)
	s.Known = known
	s.Limits = walk.DefaultLimits
	s.Limits.MaxDepth, s.Limits.MaxZipBytes = o.maxDepth, o.maxZipMiB<<20
	s.Limits.MaxFileExpandBytes, s.Limits.MaxScanExpandBytes = o.maxExpandFileMiB<<20, o.maxExpandScanMiB<<20
	s.Limits.ScanExpand = new(atomic.Int64)
	if o.jobs > 0 {
		s.Workers = o.jobs
	}
	stopProgress := func() {}
	if !o.quiet && isTerminal(cmd.ErrOrStderr()) {
		s.Progress = new(scan.Progress)
		stopProgress = startProgress(cmd.ErrOrStderr(), s.Progress, progressDelay)
		defer stopProgress()
	}
	var suggestions []string
	if o.gitStaged {
		if err := inGitWorkTree(ctx); err != nil {
			return usage("lint: --git-staged: %v", err)
		}
		gitStaged(ctx, s)
	}
	for _, t := range targets {
		kind, rest := source.Split(t)
		switch kind {
		case source.KindFS:
			s.FS(ctx, t, rest, nil)
		case source.KindDockerfile:
			sug, err := dockerfile.Scan(ctx, s, t, rest)
			if err != nil {
				s.Fail("%s: %v", t, err)
			}
			suggestions = append(suggestions, sug...)
		default:
			tg, err := source.Open(ctx, t)
			if err != nil {
				var ue *source.UsageError
				if errors.As(err, &ue) {
					return usage("lint: %v", err)
				}
				s.Fail("%s: %v", t, err)
				continue
			}
			s.Target(ctx, tg)
			tg.Close()
		}
	}
	stopProgress() // before anything else is written to the terminal
	res := s.Result()

	if o.writeBaseline {
		b, err := allow.NewBaseline()
		if err != nil {
			return &ExitError{Code: ExitIncomplete, Err: err}
		}
		for _, f := range res.Findings {
			b.Add(f)
		}
		if err := b.Save(o.baseline); err != nil {
			return &ExitError{Code: ExitIncomplete, Err: err}
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "lint: wrote %d finding(s) to baseline %s\n", len(b.Fingerprints), o.baseline)
		if res.Incomplete() {
			return &ExitError{Code: ExitIncomplete, Err: errors.New("lint: the scan was incomplete; the baseline may miss findings")}
		}
		return nil
	}

	kept := res.Findings[:0]
	now := time.Now()
	baselined := 0
	for _, f := range res.Findings {
		if base != nil && base.Has(f) {
			baselined++
			continue
		}
		if cfg != nil {
			if reason := cfg.Allowed(f, now, func(r allow.Rule) {
				fmt.Fprintf(cmd.ErrOrStderr(), "lint: allow rule %q expired on %s; it no longer applies\n", r.Reason, r.Expires)
			}); reason != "" {
				continue
			}
		}
		kept = append(kept, f)
	}
	res.Findings = kept
	if cfg != nil {
		for i, k := range res.Skips {
			if !k.Incomplete {
				continue
			}
			if reason := cfg.AcceptedSkip(k.Path, now, func(r allow.Rule) {
				fmt.Fprintf(cmd.ErrOrStderr(), "lint: skip acceptance %q expired on %s; it no longer applies\n", r.Reason, r.Expires)
			}); reason != "" {
				res.Skips[i].Incomplete = false
				res.Skips[i].Reason += " (accepted: " + reason + ")"
			}
		}
	}
	if base != nil {
		// "no secrets found" alone would hide that the baseline did the finding away.
		fmt.Fprintf(cmd.ErrOrStderr(), "lint: the baseline %s suppressed %d finding(s)\n", o.baseline, baselined)
	}

	var w io.Writer = cmd.OutOrStdout()
	if o.output != "" {
		fh, err := os.Create(o.output)
		if err != nil {
			return usage("lint: --output: %v", err)
		}
		defer fh.Close()
		w = fh
	}
	if err := report.Write(w, o.format, res, Version); err != nil {
		return &ExitError{Code: ExitIncomplete, Err: err}
	}
	if o.suggestIgnore && len(suggestions) > 0 {
		// Keep JSON and SARIF on stdout parseable.
		sw := cmd.OutOrStdout()
		if o.format != "text" || o.output != "" {
			sw = cmd.ErrOrStderr()
		}
		fmt.Fprintln(sw, "# add to .dockerignore:")
		for _, l := range suggestions {
			fmt.Fprintln(sw, l)
		}
	}
	if res.Incomplete() {
		msg := "lint: the scan could not be completed"
		if len(res.Errors) > 0 {
			msg += ": " + res.Errors[0]
			if len(res.Errors) > 1 {
				msg += fmt.Sprintf(" (and %d more)", len(res.Errors)-1)
			}
		} else {
			msg += ": content was skipped (see the report)"
		}
		return &ExitError{Code: ExitIncomplete, Err: errors.New(msg)}
	}
	for _, f := range res.Findings {
		if f.Severity >= failOn && failClasses[f.Class] {
			return &ExitError{Code: ExitFindings, Err: fmt.Errorf("lint: %d secret(s) found", len(res.Findings))}
		}
	}
	return nil
}

// parseFailOn reads --fail-on: a severity and class names, comma-separated
// ("high", "low,fixture", "all"). Findings of class secret always fail;
// fixture and shipped ones only when named.
func parseFailOn(v string) (rules.Severity, map[string]bool, error) {
	sev := rules.Low
	classes := map[string]bool{scan.ClassSecret: true}
	for _, w := range strings.Split(v, ",") {
		w = strings.TrimSpace(w)
		switch {
		case w == "all":
			for _, c := range scan.Classes {
				classes[c] = true
			}
		case slices.Contains(scan.Classes, w):
			classes[w] = true
		default:
			s, err := rules.ParseSeverity(w)
			if err != nil {
				return 0, nil, fmt.Errorf("%q is neither a severity (low, medium, high, critical) nor a class (%s, all)", w, strings.Join(scan.Classes, ", "))
			}
			sev = s
		}
	}
	return sev, classes, nil
}

// knownRules turns each secret value and its base64, hex and URL-encoded
// forms into literal rules. Values under 6 bytes would match everywhere and
// are left out (and said so).
func knownRules(secrets []KnownSecret, names map[string]string, warn io.Writer) []*rules.Rule {
	var out []*rules.Rule
	for i, s := range secrets {
		if len(s.Value) < 6 {
			fmt.Fprintf(warn, "lint: known secret %q is shorter than 6 bytes; not searched\n", s.Name)
			continue
		}
		forms := []struct{ kind, v string }{
			{"raw", string(s.Value)},
			{"base64", strings.TrimRight(base64.StdEncoding.EncodeToString(s.Value), "=")},
			{"base64url", strings.TrimRight(base64.URLEncoding.EncodeToString(s.Value), "=")},
			{"hex", hex.EncodeToString(s.Value)},
			{"HEX", strings.ToUpper(hex.EncodeToString(s.Value))},
			{"url-encoded", url.QueryEscape(string(s.Value))},
		}
		seen := map[string]bool{}
		for _, f := range forms {
			if seen[f.v] {
				continue
			}
			seen[f.v] = true
			id := fmt.Sprintf("known-secret-%d-%s", i, f.kind)
			names[id] = s.Name
			out = append(out, rules.Literal(id, fmt.Sprintf("the value of secret %q (%s)", s.Name, f.kind), []byte(f.v)))
		}
	}
	return out
}

// inGitWorkTree says, as a usage error, why --git-staged has no index to
// read: no git, or a directory outside any repository (where `git diff
// --cached` only fails with its usage and exit status 129).
func inGitWorkTree(ctx context.Context) error {
	if _, err := exec.LookPath("git"); err != nil {
		return errors.New("git is not installed")
	}
	if err := exec.CommandContext(ctx, "git", "rev-parse", "--is-inside-work-tree").Run(); err != nil {
		wd, _ := os.Getwd()
		return fmt.Errorf("%s is not inside a git work tree; run it in the repository, or scan a directory with fs:PATH", wd)
	}
	return nil
}

// gitStaged scans what `git commit` would record: the index's version of
// each added, copied or modified file (not the working tree's).
func gitStaged(ctx context.Context, s *scan.Scanner) {
	out, err := exec.CommandContext(ctx, "git", "diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR").Output()
	if err != nil {
		s.Fail("git-staged: git diff --cached: %v", err)
		return
	}
	w := walk.New(s.Engine)
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		cmd := exec.CommandContext(ctx, "git", "cat-file", "blob", ":"+name)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			s.Fail("git-staged: %s: %v", name, err)
			continue
		}
		if err := cmd.Start(); err != nil {
			s.Fail("git-staged: %s: %v", name, err)
			continue
		}
		s.File(w, "git-staged", name, stdout)
		if err := cmd.Wait(); err != nil {
			s.Fail("git-staged: %s: %v", name, err)
		}
	}
}
