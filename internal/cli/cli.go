// Package cli holds what the inject and broker commands share: the
// first-argument subcommand dispatch, the mapping of errors to exit codes,
// the slog logger from --log-level/--log-format, and the version command.
package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/secretbroker/secretbroker/process"
	"github.com/secretbroker/secretbroker/providers"
)

// Main runs a program and returns its exit code. A subcommand is
// recognised only as the first argument (so `inject --dir d check` and
// `inject -- lint` run programs named check and lint); anything else goes
// to the root command newRoot builds.
//
// Only the command that runs is built: the ENTRYPOINT path constructs no
// subcommand (lint's has many flags). Help, --version and shell completion
// build the whole tree, so they list every subcommand.
func Main(name string, args []string, stderr io.Writer, newRoot func() *cobra.Command, subcommands map[string]func() *cobra.Command) int {
	process.Harden()
	if err := process.CheckNotSetuid(); err != nil {
		fmt.Fprintln(stderr, name+": "+err.Error())
		return ExitUsage
	}
	cmd, err := build(name, args, newRoot, subcommands)
	if err == nil {
		cmd.SetArgs(args)
		err = cmd.Execute()
	}
	if err == nil {
		return 0
	}
	var q quietError
	if errors.As(err, &q) {
		return q.code
	}
	code := CodeOf(err)
	var ee *ExitError
	if code == 1 && !errors.As(err, &ee) {
		code = ExitUsage // cobra's and pflag's own errors: bad flag, bad value
	}
	fmt.Fprintln(stderr, name+": "+err.Error())
	return code
}

// quietError is an exit code with nothing more to say (the app's own code
// under --supervise, audit or lint results already printed).
type quietError struct{ code int }

func (q quietError) Error() string { return fmt.Sprintf("exit %d", q.code) }

// ExitQuietly ends the program with code and no message; 0 is success.
func ExitQuietly(code int) error {
	if code == 0 {
		return nil
	}
	return quietError{code}
}

// AddLogFlags declares --log-level and --log-format.
func AddLogFlags(f *pflag.FlagSet) {
	f.String("log-level", "info", "debug, info, warn or error")
	f.String("log-format", "text", "text or json")
}

// NewLogger builds the slog logger from --log-level and --log-format.
func NewLogger(f *pflag.FlagSet, w io.Writer) (*slog.Logger, error) {
	lvl, _ := f.GetString("log-level")
	format, _ := f.GetString("log-format")
	var level slog.Level
	if err := level.UnmarshalText([]byte(lvl)); err != nil {
		return nil, Exit(ExitUsage, fmt.Errorf("--log-level %q: want debug, info, warn or error", lvl))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, Exit(ExitUsage, fmt.Errorf("--log-format %q: want text or json", format))
}

// Version is set at build time with -ldflags "-X github.com/secretbroker/secretbroker/internal/cli.Version=v1.2.3".
var Version = "dev"

// ResolvedVersion is Version, or the module version go install recorded.
func ResolvedVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return Version
}

// VersionCommand prints the program's version and the providers built in.
func VersionCommand(name string) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and the providers built in",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), versionLine(name))
		},
	}
}

// versionLine is what `NAME version` and `NAME --version` print.
func versionLine(name string) string {
	return fmt.Sprintf("%s %s (providers: %s)", name, ResolvedVersion(), strings.Join(providers.Registered(), ", "))
}
