package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"broker": func() { os.Exit(Main(os.Args[1:])) },
	})
}

// TestScripts runs the CLI behaviour in testdata/*.txtar. Each script gets
// $SHM, a fresh directory on /dev/shm (tmpfs), and $DISK, one on the disk.
// Secret values in scripts contain "s3cr3t"; `noleak` fails when the last
// command's stdout or stderr (or only those named: `noleak stderr`) shows one.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(e *testscript.Env) error {
			shm, err := os.MkdirTemp("/dev/shm", "broker-script")
			if err != nil {
				return err
			}
			os.Chmod(shm, 0o755)
			e.Defer(func() { os.RemoveAll(shm) })
			e.Setenv("SHM", shm)
			e.Setenv("DISK", e.WorkDir)
			e.Setenv("XDG_RUNTIME_DIR", "")
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "root":
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"noleak": func(ts *testscript.TestScript, neg bool, args []string) {
				files := []string{"stdout", "stderr"}
				if len(args) > 0 {
					files = args // the app printed its own secret on stdout
				}
				for _, f := range files {
					out := ts.ReadFile(f)
					if strings.Contains(out, "s3cr3t") {
						ts.Fatalf("%s shows a secret value:\n%s", f, out)
					}
				}
			},
		},
	})
}
