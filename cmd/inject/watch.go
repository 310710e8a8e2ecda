package main

import (
	"errors"
	"fmt"

	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/process"
)

// watchOptions reads --watch, --reload-signal and --restart-on-change; nil
// when there is nothing to watch.
func (o *runOptions) watchOptions() (*process.WatchOptions, error) {
	if o.restartOnChange && o.watch == "" {
		return nil, cli.Exit(cli.ExitUsage, fmt.Errorf("--restart-on-change needs --watch DIR"))
	}
	sig, err := process.ParseSignal(o.reloadSignal)
	if err != nil {
		return nil, cli.Exit(cli.ExitUsage, fmt.Errorf("--reload-signal: %v", err))
	}
	if o.watch == "" {
		return nil, nil
	}
	return &process.WatchOptions{Dir: o.watch, Signal: sig, Restart: o.restartOnChange}, nil
}

// superviseWatch is process.Supervise, with the relay when --watch is set.
func superviseWatch(w *process.WatchOptions) func(string, []string, []string, process.SuperviseOptions) (int, error) {
	if w == nil {
		return process.Supervise
	}
	return func(path string, argv, env []string, o process.SuperviseOptions) (int, error) {
		code, err := process.SuperviseWatch(path, argv, env, o, *w)
		var we *process.WatchError
		if errors.As(err, &we) {
			err = cli.Exit(cli.ExitDir, err)
		}
		return code, err
	}
}
