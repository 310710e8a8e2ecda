package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/secretbroker/secretbroker/internal/scripttest"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"broker": func() { os.Exit(Main(os.Args[1:])) },
	})
}

// TestScripts runs the CLI behaviour in testdata/*.txtar (see scripttest).
func TestScripts(t *testing.T) { scripttest.Run(t, nil, nil) }
