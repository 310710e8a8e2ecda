package broker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secretbroker/secretbroker/process"
	"github.com/secretbroker/secretbroker/spec"
)

// Notifier tells the app that files were replaced: a signal to the PID in
// pid_file (a shared PID namespace), or a command. With neither, the app
// learns from the relay (inject --watch) or by re-reading its files.
type Notifier struct {
	sig     syscall.Signal
	pidFile string
	command []string
	env     []string
	log     *slog.Logger
}

// NewNotifier validates notify: a known signal needs a pid_file; a
// command is a non-empty argv; not both. env is the command's environment:
// the broker gives it the app's, stripped the same way
// (pipeline.Run.HelperEnv).
func NewNotifier(n spec.Notify, env []string, log *slog.Logger) (*Notifier, error) {
	out := &Notifier{log: log, pidFile: n.PIDFile, command: n.Command, env: env}
	switch {
	case n.Signal != "" && len(n.Command) > 0:
		return nil, fmt.Errorf("give signal (with pid_file) or command, not both")
	case n.Signal != "":
		s, err := process.ParseSignal(n.Signal)
		if err != nil {
			return nil, fmt.Errorf("signal: %v", err)
		}
		if n.PIDFile == "" {
			return nil, fmt.Errorf("signal %s needs pid_file: the file holding the app's PID (a shared PID namespace)", n.Signal)
		}
		out.sig = s
	case n.PIDFile != "":
		return nil, fmt.Errorf("pid_file needs signal, e.g. signal: SIGHUP")
	case n.Command != nil && len(n.Command) == 0:
		return nil, fmt.Errorf("command is empty; give an argv list such as [\"/bin/reload\"]")
	}
	return out, nil
}

// Notify runs after a cycle that replaced files; failures are logged.
func (n *Notifier) Notify(ctx context.Context, changed []string) {
	if n == nil {
		return
	}
	switch {
	case n.sig != 0:
		b, err := os.ReadFile(n.pidFile)
		if err != nil {
			n.log.Warn("cannot notify the app: cannot read pid_file", "pid_file", n.pidFile, "err", err)
			return
		}
		pid, err := process.ParsePID(string(b)) // exact: 4294967295 is no pid (it would be kill(-1))
		if err != nil {
			n.log.Warn("cannot notify the app: pid_file does not hold a PID above 1", "pid_file", n.pidFile)
			return
		}
		if err := unix.Kill(pid, n.sig); err != nil {
			n.log.Warn("cannot notify the app", "pid", pid, "signal", n.sig.String(), "err", err)
			return
		}
		n.log.Info("notified the app", "pid", pid, "signal", unix.SignalName(n.sig))
	case len(n.command) > 0:
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, n.command[0], n.command[1:]...)
		cmd.Env = append(append([]string(nil), n.env...), "SECRETBROKER_CHANGED="+strings.Join(changed, ","))
		// Its output is not relayed: a reload script may print what it read.
		if err := cmd.Run(); err != nil {
			n.log.Warn("notify command failed", "command", n.command[0], "err", err)
			return
		}
		n.log.Info("notify command ran", "command", n.command[0])
	}
}
