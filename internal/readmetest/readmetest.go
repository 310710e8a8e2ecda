// Package readmetest follows a README literally: it takes the commands of
// the code block under a heading and runs them one by one in bash, as a
// reader pasting them would, so the documented path cannot drift from what
// works.
//
// A block is the indented (four spaces) or fenced code that follows the
// heading. In it, a line ending in `\` continues on the next; a line that
// starts with `#` is a comment, except `#   TEXT` (a hash and exactly three
// spaces) directly after a command: that is output the command shows, and the
// command is repeated until its output has every such line (a broker or an app
// may need a moment), up to Runner.Wait; such a command may also fail
// until then (a server still starting). In expected output, `…` stands for
// anything, and a compose log prefix `svc-1  | ` also matches Compose v1's
// `svc_1  | `.
//
// `cd DIR` and `export NAME=VALUE` change the directory and the environment
// of the commands after them, as they would in the reader's shell.
package readmetest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Step is one command of a block and the output it is documented to show.
type Step struct {
	Line int              // line number in the Markdown file
	Cmd  string           // the command, continuation lines joined
	Want []*regexp.Regexp // each must match a line of the output
	Text []string         // Want as written, for messages
}

// Block returns the steps of the first code block after the heading whose
// text (without the leading #s) is heading. It fails t when there is none.
func Block(t testing.TB, path, heading string) []Step {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	steps, err := parse(string(b), heading)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return steps
}

var composePrefix = regexp.MustCompile(`^([a-z0-9]+)-1 +\\\| `)

func parse(md, heading string) ([]Step, error) {
	sc := bufio.NewScanner(strings.NewReader(md))
	n, found, inBlock, fenced := 0, false, false, false
	var steps []Step
	var cont *Step
	for sc.Scan() {
		n++
		line := sc.Text()
		if !found {
			if strings.HasPrefix(line, "#") && strings.TrimSpace(strings.TrimLeft(line, "#")) == heading {
				found = true
			}
			continue
		}
		var code string
		switch {
		case !inBlock && strings.HasPrefix(line, "```"):
			inBlock, fenced = true, true
			continue
		case fenced && strings.HasPrefix(line, "```"):
			return steps, nil
		case fenced:
			code = line
		case strings.HasPrefix(line, "    "):
			inBlock, code = true, line[4:]
		case inBlock && strings.TrimSpace(line) == "":
			continue
		case inBlock:
			return steps, nil
		case strings.HasPrefix(line, "#"):
			return nil, fmt.Errorf("no code block under %q", heading)
		default:
			continue
		}
		trimmed := strings.TrimSpace(code)
		switch {
		case cont != nil:
			cont.Cmd += "\n" + code
			if !strings.HasSuffix(trimmed, `\`) {
				cont = nil
			}
		case strings.HasPrefix(code, "#   ") && len(code) > 4 && code[4] != ' ' && len(steps) > 0:
			last := &steps[len(steps)-1]
			want := strings.TrimSpace(code[4:])
			re := regexp.QuoteMeta(want)
			re = composePrefix.ReplaceAllString(re, `${1}[-_]1 +\| `)
			re = strings.ReplaceAll(re, "…", ".*")
			last.Want = append(last.Want, regexp.MustCompile(re))
			last.Text = append(last.Text, want)
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		default:
			steps = append(steps, Step{Line: n, Cmd: code})
			if strings.HasSuffix(trimmed, `\`) {
				cont = &steps[len(steps)-1]
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("no heading %q", heading)
	}
	return steps, nil
}

// Runner runs steps as a reader's shell would.
type Runner struct {
	Dir     string              // where the first command runs
	Env     []string            // the environment (os.Environ() when nil)
	Rewrite func(string) string // applied to every command (e.g. `docker compose` → `docker-compose`)
	Wait    time.Duration       // how long a step with expected output is retried (default 90s)
	Timeout time.Duration       // one command's limit (default 5m)
	// Check, when set, sees every command's output (a test fails on a
	// secret value in it).
	Check func(t testing.TB, s Step, out string)
}

// Run runs each step in order and fails t at the first that fails or never
// shows its expected output.
func (r *Runner) Run(t testing.TB, steps []Step) {
	t.Helper()
	if r.Env == nil {
		r.Env = os.Environ()
	}
	if r.Wait == 0 {
		r.Wait = 90 * time.Second
	}
	if r.Timeout == 0 {
		r.Timeout = 5 * time.Minute
	}
	for _, s := range steps {
		cmd := s.Cmd
		if r.Rewrite != nil {
			cmd = r.Rewrite(cmd)
		}
		t.Logf("line %d: %s", s.Line, cmd)
		fields := strings.Fields(cmd)
		switch {
		case len(fields) > 0 && fields[0] == "cd":
			dir, err := r.bash(cmd + "\npwd")
			if err != nil {
				t.Fatalf("line %d: %s: %v\n%s", s.Line, cmd, err, dir)
			}
			r.Dir = strings.TrimSpace(dir)
			continue
		case len(fields) > 1 && fields[0] == "export" && !strings.ContainsAny(cmd, "$`\"'"):
			for _, kv := range fields[1:] {
				r.Env = append(r.Env, kv)
			}
			continue
		}
		deadline := time.Now().Add(r.Wait)
		for {
			out, err := r.bash(cmd)
			if r.Check != nil {
				r.Check(t, s, out)
			}
			if err != nil && (len(s.Want) == 0 || time.Now().After(deadline)) {
				t.Fatalf("line %d: %s: %v\n%s", s.Line, cmd, err, out)
			}
			missing := missing(s, out)
			if err == nil && missing == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("line %d: %s: no output line like %q within %s; got:\n%s", s.Line, cmd, missing, r.Wait, out)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}

// ansi matches the colour codes Compose v1 writes even to a pipe; a
// reader's terminal shows none of them.
var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

func missing(s Step, out string) string {
	lines := strings.Split(ansi.ReplaceAllString(out, ""), "\n")
next:
	for i, re := range s.Want {
		for _, l := range lines {
			if re.MatchString(l) {
				continue next
			}
		}
		return s.Text[i]
	}
	return ""
}

func (r *Runner) bash(script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.Timeout)
	defer cancel()
	c := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", script)
	c.Dir, c.Env = r.Dir, r.Env
	out, err := c.CombinedOutput()
	return string(out), err
}

// CopyTree copies the files git would commit under root (tracked, plus
// untracked ones it does not ignore) to a new git work tree, so a README's
// commands can build and write there without touching the checkout.
func CopyTree(t testing.TB, root string) string {
	t.Helper()
	ls := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	ls.Dir = root
	list, err := ls.Output()
	if err != nil {
		t.Fatalf("git ls-files in %s: %v", root, err)
	}
	dst := filepath.Join(t.TempDir(), "secretbroker")
	for _, f := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		src := filepath.Join(root, f)
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or a link
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, f)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	// A clone has git: `git rev-parse --show-toplevel` must answer in the copy.
	if out, err := exec.Command("git", "init", "-q", dst).CombinedOutput(); err != nil {
		t.Fatalf("git init %s: %v\n%s", dst, err, out)
	}
	return dst
}
