// Command broker is the sidecar that keeps secrets fresh: the inject
// pipeline on a schedule (package broker), with readiness, metrics and
// notifications. The command only wires packages.
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

// subcommands are recognised only as the first argument.
var subcommands = []func() *cobra.Command{newHealthcheckCommand, newVersionCommand}

// Main runs broker with args and returns its exit code.
func Main(args []string) int {
	process.Harden()
	var cmd *cobra.Command
	if len(args) > 0 {
		for _, mk := range subcommands {
			if c := mk(); c.Name() == args[0] {
				root := &cobra.Command{Use: "broker", SilenceErrors: true, SilenceUsage: true}
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
	if code == 1 && !isExit(err) {
		code = pipeline.ExitUsage // cobra's and pflag's own errors
	}
	if _, quiet := err.(quietError); !quiet {
		fmt.Fprintln(os.Stderr, "broker: "+err.Error())
	}
	return code
}

func isExit(err error) bool {
	_, ok := err.(*pipeline.ExitError)
	if !ok {
		_, ok = err.(quietError)
	}
	return ok
}

// quietError is an exit code with nothing more to say.
type quietError struct{ code int }

func (q quietError) Error() string { return fmt.Sprintf("exit %d", q.code) }
