package process

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// SuperviseOptions tunes Supervise.
type SuperviseOptions struct {
	// SignalGroup forwards signals to the child's whole process group
	// (--signal-group) instead of the child alone.
	SignalGroup bool
	// Started runs once the child is running; ctx ends when it exits. The
	// providers' lease renewal (Lifecycle.Keep) hangs off it.
	Started func(ctx context.Context, pid int)
	Logger  *slog.Logger
}

// Supervise starts the app as inject's child and stays as its parent the way
// tini does: the child gets its own process group (made the terminal's
// foreground group when stdin is a terminal), every signal but SIGCHLD and
// SIGURG (the Go runtime's own) is forwarded, one loop reaps every zombie
// (inject may be PID 1) and picks the child's status out of them, and the
// child's exit code is returned (128+N when signal N killed it).
func Supervise(path string, argv, env []string, o SuperviseOptions) (int, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	defer signal.Stop(sigs)

	tty := term.IsTerminal(0)
	proc, err := os.StartProcess(path, argv, &os.ProcAttr{
		Env:   env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setpgid: true, Foreground: tty, Ctty: 0},
	})
	if err != nil {
		return 0, &StartError{Code: 126, Msg: fmt.Sprintf("cannot start %s: %v", path, err)}
	}
	pid := proc.Pid
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if o.Started != nil {
		go o.Started(ctx, pid)
	}
	target := pid
	if o.SignalGroup {
		target = -pid
	}
	// Reap once up front: the child may have exited before Notify saw SIGCHLD.
	if code, done := reap(pid); done {
		return code, nil
	}
	for sig := range sigs {
		s := sig.(syscall.Signal)
		switch s {
		case syscall.SIGCHLD:
			if code, done := reap(pid); done {
				return code, nil
			}
		case syscall.SIGURG, syscall.SIGTTIN, syscall.SIGTTOU:
			// SIGURG is the Go runtime's preemption signal; SIGTTIN/SIGTTOU
			// are the terminal telling inject (now in the background) to stop.
		default:
			if err := unix.Kill(target, s); err != nil && err != unix.ESRCH {
				log.Warn("cannot forward signal", "signal", s.String(), "pid", target, "err", err)
			}
		}
	}
	return 0, fmt.Errorf("signal channel closed")
}

// reap collects every exited child without blocking and reports the app's
// exit code once it is among them.
func reap(app int) (code int, done bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return code, done
		}
		if pid == app && (ws.Exited() || ws.Signaled()) {
			done = true
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			} else {
				code = ws.ExitStatus()
			}
		}
	}
}
