package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/secretbroker/secretbroker/internal/scripttest"
	"github.com/secretbroker/secretbroker/policy"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"inject": func() {
			// Scripts point the guardrail at a file of their own; only
			// this test binary reads the variable.
			if g := os.Getenv("SECRETBROKER_TEST_GUARDRAIL"); g != "" {
				policy.GuardrailPath = g
			}
			os.Exit(Main(os.Args[1:]))
		},
	})
}

// scriptSetups and scriptCmds are filled in init by the providers'
// *_script_test.go files (awssm_ scripts start a fake Secrets Manager).
var (
	scriptSetups = map[string]func(*testscript.Env) error{}
	scriptCmds   = map[string]scripttest.Cmd{}
)

// TestScripts runs the CLI behaviour in testdata/*.txtar (see scripttest).
func TestScripts(t *testing.T) { scripttest.Run(t, scriptSetups, scriptCmds) }
