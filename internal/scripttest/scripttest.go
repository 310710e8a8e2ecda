// Package scripttest is the shared harness of the commands' testscript
// files: every script gets $SHM, a fresh directory on /dev/shm (tmpfs), and
// $DISK, one on the disk; the [root] condition; and the `noleak` command.
// Secret values in scripts contain "s3cr3t"; `noleak` fails when the last
// command's stdout or stderr (or only those named: `noleak stderr`) shows one.
package scripttest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// Cmd is a testscript command.
type Cmd = func(ts *testscript.TestScript, neg bool, args []string)

// Run runs testdata/*.txtar. setups prepare the scripts whose file name
// starts with the key (awssm_ starts a fake Secrets Manager); cmds are
// extra script commands.
func Run(t *testing.T, setups map[string]func(*testscript.Env) error, cmds map[string]Cmd) {
	all := map[string]Cmd{"noleak": noleak}
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
