// Command inject is the container ENTRYPOINT wrapper: it resolves the
// secrets a workload declares, writes them to tmpfs and starts the app. The
// command only wires packages; the work is in spec, policy, providers,
// tmpfs, process and pipeline.
package main

import (
	_ "github.com/secretbroker/secretbroker/providers/builtin" // the providers this binary carries

	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/secretbroker/secretbroker/pipeline"
	"github.com/secretbroker/secretbroker/process"
)

func main() { os.Exit(Main(os.Args[1:])) }

// subcommands are recognised only as the first argument, so
// `inject -- lint` and `inject --dir d check` run programs named lint and check.
var subcommands = []func() *cobra.Command{newLintCommand, newCheckCommand, newPolicyCommand, newVersionCommand, newWaitCommand}

// Main runs inject with args and returns its exit code.
func Main(args []string) int {
	process.Harden()
	var cmd *cobra.Command
	if len(args) > 0 {
		for _, mk := range subcommands {
			if c := mk(); c.Name() == args[0] {
				root := &cobra.Command{Use: "inject", SilenceErrors: true, SilenceUsage: true}
				root.AddCommand(c)
				cmd = root
				break
			}
		}
	}
	if cmd == nil {
		cmd = newRunCommand()
	}
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err == nil {
		return 0
	}
	code := pipeline.CodeOf(err)
	if code == 1 && isUsageError(err) {
		code = pipeline.ExitUsage
	}
	if !isQuiet(err) {
		fmt.Fprintln(os.Stderr, "inject: "+err.Error())
	}
	return code
}

// quietError is an exit code with nothing more to say (the app's own exit
// code under --supervise, audit results already printed).
type quietError struct{ code int }

func (q quietError) Error() string { return fmt.Sprintf("exit %d", q.code) }

func isQuiet(err error) bool {
	_, ok := err.(quietError)
	if ee, isExit := err.(*pipeline.ExitError); isExit {
		_, ok = ee.Err.(quietError)
	}
	return ok
}

func exitQuietly(code int) error {
	if code == 0 {
		return nil
	}
	return &pipeline.ExitError{Code: code, Err: quietError{code}}
}

// isUsageError recognises cobra's and pflag's own errors (bad flag, bad
// value), which carry no code.
func isUsageError(err error) bool {
	var ee *pipeline.ExitError
	if asExit(err, &ee) {
		return false
	}
	return true
}

func asExit(err error, target **pipeline.ExitError) bool {
	for e := err; e != nil; {
		if x, ok := e.(*pipeline.ExitError); ok {
			*target = x
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}
