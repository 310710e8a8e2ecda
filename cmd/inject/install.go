package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/secretbroker/secretbroker/internal/cli"
)

// newInstallCommand copies this very binary into DIR/inject: the
// Kubernetes webhook's init container runs it to put inject into a memory
// volume the app's containers share, with no shell or cp in any image.
func newInstallCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "install DIR",
		Short: "Copy this inject binary to DIR/inject, mode 0755 (an init container's job; needs no shell)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dst := filepath.Join(args[0], "inject")
			if err := installSelf(dst); err != nil {
				return cli.Exit(cli.ExitDir, fmt.Errorf("install: %w", err))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "inject: installed %s\n", dst)
			return nil
		},
	}
}

// installSelf writes the running executable to dst atomically (a
// temporary name in the same directory, then rename).
func installSelf(dst string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	src, err := os.Open(self)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".inject-*")
	if err != nil {
		return err
	}
	_, err = io.Copy(tmp, src)
	err = errors.Join(err, tmp.Chmod(0o755), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
