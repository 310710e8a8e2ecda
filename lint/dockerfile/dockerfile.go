// Package dockerfile checks a build before it runs: the Dockerfile is parsed
// with BuildKit's own parser, COPY/ADD sources are resolved against the
// build context with .dockerignore applied by moby/patternmatcher (the same
// code Docker uses), and every context file that would enter the image is
// scanned. ARG/ENV carrying secrets (by value, or by name as BuildKit's
// SecretsUsedInArgOrEnv check does) and RUN lines with inline credentials
// are flagged, each with its fix.
package dockerfile

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/secretbroker/secretbroker/lint/rules"
	"github.com/secretbroker/secretbroker/lint/scan"
	"github.com/secretbroker/secretbroker/lint/walk"
)

// secretName matches variable names BuildKit's SecretsUsedInArgOrEnv rule
// treats as secrets (a word of the name, split on _ and -).
var secretName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)(^|[_-])(apikey|api_key|auth|credentials?|passwd|password|pword|secret|token|private_key)($|[_-])`)
})

// Scan checks the Dockerfile at p and its context (the Dockerfile's
// directory, or p itself when it is a directory). It returns the
// .dockerignore lines that would keep every flagged context file out.
func Scan(ctx context.Context, s *scan.Scanner, target, p string) ([]string, error) {
	file, dir := p, filepath.Dir(p)
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		file, dir = filepath.Join(p, "Dockerfile"), p
	}
	fh, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	res, err := parser.Parse(fh)
	if err != nil {
		return nil, fmt.Errorf("the Dockerfile does not parse: %w", err)
	}
	pm, err := ignores(dir, file)
	if err != nil {
		return nil, err
	}
	sc := s.Engine.NewScanner()
	dfName := filepath.Base(file)
	var sources []string
	var copies []copySource // the same, with their instruction
	for _, n := range res.AST.Children {
		cmd := strings.ToLower(n.Value)
		switch cmd {
		case "copy", "add":
			if hasFlag(n.Flags, "--from") {
				continue
			}
			args := words(n)
			if len(args) > 1 {
				sources = append(sources, args[:len(args)-1]...)
				for _, a := range args[:len(args)-1] {
					copies = append(copies, copySource{a, n.StartLine, strings.ToUpper(cmd)})
				}
			}
		case "arg", "env":
			kv := words(n)
			if cmd == "env" && len(kv)%2 == 0 && !strings.Contains(n.Original, "=") {
				kv = []string{kv[0] + "=" + strings.Join(kv[1:], " ")}
			} else if cmd == "env" {
				var pairs []string
				for i := 0; i+1 < len(kv); i += 2 {
					pairs = append(pairs, kv[i]+"="+kv[i+1])
				}
				kv = pairs
			}
			for _, a := range kv {
				name, val, hasVal := strings.Cut(a, "=")
				found := false
				for _, m := range sc.ScanBytes([]byte(a), "<image-config>") {
					found = true
					add(s, target, dfName, n.StartLine, m, fmt.Sprintf("%s %s carries a secret; use RUN --mount=type=secret,id=%s and pass it with --secret at build time", strings.ToUpper(cmd), name, strings.ToLower(name)))
				}
				if !found && secretName().MatchString(name) && (!hasVal || !rules.IsPlaceholder([]byte(val))) {
					s.Add(scan.Finding{
						RuleID: "dockerfile-secret-in-" + cmd, Description: fmt.Sprintf("%s %s looks like a secret; its value is recorded in the image (config or history)", strings.ToUpper(cmd), name),
						Severity: rules.Medium, Target: target, Path: dfName, Line: n.StartLine, Status: "in Dockerfile", Preview: "-",
						Fix: fmt.Sprintf("use RUN --mount=type=secret,id=%s instead of %s", strings.ToLower(name), strings.ToUpper(cmd)),
					})
				}
			}
		case "run":
			text := n.Original
			for _, h := range n.Heredocs {
				text += "\n" + h.Content
			}
			for _, m := range sc.ScanBytes([]byte(pairs(text)), "<image-config>") {
				add(s, target, dfName, n.StartLine, m, "the credential is stored in the image history; use RUN --mount=type=secret")
			}
		}
	}
	// Files of the context that COPY/ADD would send into the image.
	var copied []string
	err = filepath.WalkDir(dir, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, fp)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if ok, _ := pm.MatchesOrParentMatches(rel); ok && pm != nil {
			if d.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && selected(rel, sources) {
			copied = append(copied, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, c := range copied {
		want[c] = true
	}
	s.FS(ctx, target, dir, func(rel string) bool { return want[rel] })
	flagged := map[string]bool{}
	s.Edit(func(f *scan.Finding) {
		if f.Target != target || f.Status != scan.StatusFile {
			return
		}
		f.Status = "in build context (copied into the image)"
		file := walk.OuterPath(f.Path)
		c, byName := copiedBy(file, copies)
		if c.line > 0 {
			// The finding points at the instruction that copies the file.
			f.Note = strings.TrimPrefix(f.Note+"; ", "; ") + fmt.Sprintf("copied by %s at %s:%d", c.cmd, dfName, c.line)
		}
		if byName {
			// Ignoring a file the Dockerfile copies by name would break the
			// build: the instruction is what must go.
			f.Fix = fmt.Sprintf("remove the %s of %s at line %d; mount it at build time with RUN --mount=type=secret instead", c.cmd, file, c.line)
			return
		}
		f.Fix = "add /" + file + " to .dockerignore, or mount it at build time with RUN --mount=type=secret"
		flagged["/"+file] = true
	})
	var out []string
	for l := range flagged {
		out = append(out, l)
	}
	sort.Strings(out)
	return out, nil
}

// copySource is one source of a COPY/ADD and its instruction.
type copySource struct {
	src  string
	line int
	cmd  string
}

// copiedBy finds the instruction that sends rel into the image, and
// whether it names rel itself (not a directory or a pattern).
func copiedBy(rel string, copies []copySource) (copySource, bool) {
	var first copySource
	for _, c := range copies {
		if path.Clean(strings.TrimPrefix(c.src, "/")) == rel {
			return c, true
		}
		if first.line == 0 && selected(rel, []string{c.src}) {
			first = c
		}
	}
	return first, false
}

func add(s *scan.Scanner, target, file string, line int, m rules.Match, fix string) {
	s.Add(scan.Finding{RuleID: m.Rule.ID, Description: m.Rule.Description, Severity: m.Rule.Severity,
		Target: target, Path: file, Line: line, Status: "in Dockerfile", Secret: m.Secret, Note: m.Note, Fix: fix})
}

func hasFlag(flags []string, prefix string) bool {
	for _, f := range flags {
		if strings.HasPrefix(f, prefix) {
			return true
		}
	}
	return false
}

func words(n *parser.Node) []string {
	var out []string
	for x := n.Next; x != nil; x = x.Next {
		out = append(out, x.Value)
	}
	return out
}

// pairs mirrors scan's NAME=VALUE extraction for RUN lines.
func pairs(text string) string {
	var b strings.Builder
	b.WriteString(text)
	for _, w := range strings.Fields(text) {
		w = strings.Trim(w, `"';&|()`)
		if strings.IndexByte(w, '=') > 0 {
			b.WriteString("\n" + w)
		}
	}
	return b.String()
}

// ignores reads Dockerfile.dockerignore or the context's .dockerignore.
func ignores(dir, dockerfile string) (*patternmatcher.PatternMatcher, error) {
	for _, p := range []string{dockerfile + ".dockerignore", filepath.Join(dir, ".dockerignore")} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		defer f.Close()
		lines, err := ignorefile.ReadAll(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return patternmatcher.New(lines)
	}
	return patternmatcher.New(nil)
}

// selected reports whether a COPY/ADD source list takes rel.
func selected(rel string, sources []string) bool {
	for _, src := range sources {
		if strings.Contains(src, "://") {
			continue // ADD from a URL
		}
		src = strings.TrimPrefix(path.Clean("/"+src), "/")
		if src == "" || src == "." {
			return true
		}
		if rel == src || strings.HasPrefix(rel, src+"/") {
			return true
		}
		if ok, _ := path.Match(src, rel); ok {
			return true
		}
		// A glob naming directories: "conf*" takes conf.d/x.
		parts := strings.Split(rel, "/")
		for i := 1; i < len(parts); i++ {
			if ok, _ := path.Match(src, strings.Join(parts[:i], "/")); ok {
				return true
			}
		}
	}
	return false
}
