// Package scripttest is the shared harness of the commands' testscript
// files: every script gets $SHM, a fresh directory on /dev/shm (tmpfs), and
// $DISK, one on the disk; the [root] condition; and the `noleak` command.
// Secret values in scripts contain "s3cr3t"; `noleak` fails when the last
// command's stdout or stderr (or only those named: `noleak stderr`) shows one.
// `exits N CMD ARGS...` runs CMD as exec does and fails unless it exits
// with exactly N (testscript's `! exec` only knows non-zero).
// `setacl PATH ENTRY...` sets PATH's POSIX access ACL to the getfacl-style
// entries (user::rw- user:1000:rw- group::r-- mask::rw- other::r--), as
// setfacl would, without the acl package.
package scripttest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"

	"github.com/secretbroker/secretbroker/internal/posixacl"
)

// Cmd is a testscript command.
type Cmd = func(ts *testscript.TestScript, neg bool, args []string)

// Run runs testdata/*.txtar. setups prepare the scripts whose file name
// starts with the key (awssm_ starts a fake Secrets Manager); cmds are
// extra script commands.
func Run(t *testing.T, setups map[string]func(*testscript.Env) error, cmds map[string]Cmd) {
	all := map[string]Cmd{"noleak": noleak, "exits": exits, "setacl": setacl}
	for k, v := range cmds {
		all[k] = v
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(e *testscript.Env) error {
			shm, err := os.MkdirTemp("/dev/shm", "script")
			if err != nil {
				return err
			}
			os.Chmod(shm, 0o755)
			e.Defer(func() { os.RemoveAll(shm) })
			e.Setenv("SHM", shm)
			e.Setenv("DISK", e.WorkDir)
			e.Setenv("XDG_RUNTIME_DIR", "")
			name := strings.TrimPrefix(filepath.Base(e.WorkDir), "script-")
			for prefix, setup := range setups {
				if strings.HasPrefix(name, prefix) {
					if err := setup(e); err != nil {
						return err
					}
				}
			}
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: all,
	})
}

func noleak(ts *testscript.TestScript, neg bool, args []string) {
	files := []string{"stdout", "stderr"}
	if len(args) > 0 {
		files = args // the app printed its own secret on stdout
	}
	for _, f := range files {
		if out := ts.ReadFile(f); strings.Contains(out, "s3cr3t") {
			ts.Fatalf("%s shows a secret value:\n%s", f, out)
		}
	}
}

func setacl(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: setacl PATH ENTRY...")
	}
	var a posixacl.ACL
	for _, s := range args[1:] {
		e, err := posixacl.ParseEntry(s)
		ts.Check(err)
		a = append(a, e)
	}
	ts.Check(unix.Setxattr(ts.MkAbs(args[0]), posixacl.Name, a.Encode(), 0))
}

func exits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad code %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}
