package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/spec"
	"github.com/secretbroker/secretbroker/tmpfs"
)

// newWaitCommand blocks until the broker's first delivery: DIR/.ready
// exists. It exits 75 when --timeout passes first. The directory is read as
// the broker reads it (--dir, INJECT_DIR, the config file's dir:).
func newWaitCommand() *cobra.Command {
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "wait",
		Short: "Block until the broker's first delivery (DIR/" + tmpfs.ReadyMarker + "); exit 75 on timeout",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return cli.Exit(cli.ExitUsage, fmt.Errorf("--timeout must be positive"))
			}
			loc, err := spec.LoadLocation(cmd.Flags())
			if err != nil {
				return cli.Exit(cli.ExitUsage, err)
			}
			dir := loc.Dir
			marker := filepath.Join(dir, tmpfs.ReadyMarker)
			deadline := time.Now().Add(timeout)
			for {
				if _, err := os.Stat(marker); err == nil {
					return nil
				}
				if time.Now().After(deadline) {
					return cli.Exit(cli.ExitWait, fmt.Errorf("wait: %s did not appear within %s; is the broker running and sharing %s?", marker, timeout, dir))
				}
				time.Sleep(100 * time.Millisecond)
			}
		},
	}
	c.Flags().String("dir", spec.DefaultDir, "the directory the broker writes; also INJECT_DIR")
	c.Flags().String("config", "", "config file to read dir: from; also INJECT_CONFIG")
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait")
	return c
}
