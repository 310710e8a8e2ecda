package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the scripts run this test binary as `inject`.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"inject": func() { os.Exit(Main(os.Args[1:])) },
	})
}

// scriptSetups prepare the scripts whose file name starts with the key
// (awssm_ starts a fake Secrets Manager); scriptCmds are extra script
// commands. Providers' *_script_test.go files add theirs in init.
var (
	scriptSetups = map[string]func(*testscript.Env) error{}
	scriptCmds   = map[string]func(ts *testscript.TestScript, neg bool, args []string){}
)

// TestScripts runs testdata/*.txtar.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:  "testdata",
		Cmds: scriptCmds,
		Setup: func(env *testscript.Env) error {
			name := strings.TrimPrefix(filepath.Base(env.WorkDir), "script-")
			for prefix, setup := range scriptSetups {
				if strings.HasPrefix(name, prefix) {
					if err := setup(env); err != nil {
						return err
					}
				}
			}
			return nil
		},
	})
}
