package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/secretbroker/secretbroker/internal/scripttest"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"inject": func() { os.Exit(Main(os.Args[1:])) },
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
