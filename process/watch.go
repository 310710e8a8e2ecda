package process

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"
)

// WatchOptions is the relay of `inject --supervise --watch DIR`: when a
// file in Dir changes (the broker replaced it), signal the app, or restart it.
type WatchOptions struct {
	Dir     string
	Signal  syscall.Signal // sent on a change; default SIGHUP
	Restart bool           // stop the app (SIGTERM, then SIGKILL after StopTimeout) and start it again
	// Debounce gathers the changes of one refresh cycle into one signal;
	// default 250ms.
	Debounce    time.Duration
	StopTimeout time.Duration // default 10s
}

// WatchError is a directory that cannot be watched (exit 73).
type WatchError struct {
	Dir string
	Err error
}

func (e *WatchError) Error() string {
	return fmt.Sprintf("%s: cannot watch it (--watch): %v", e.Dir, e.Err)
}
func (e *WatchError) Unwrap() error { return e.Err }

// SuperviseWatch is Supervise plus the relay: it watches w.Dir with
// inotify and, when a visible file in it is created, written, renamed or
// removed, sends w.Signal to the app (its group with SignalGroup) or, with
// w.Restart, restarts it. Hidden files (the broker's temporaries and
// .ready) are ignored. The app needs no shared PID namespace with the
// broker: only the directory is shared.
func SuperviseWatch(path string, argv, env []string, o SuperviseOptions, w WatchOptions) (int, error) {
	if w.Signal == 0 {
		w.Signal = syscall.SIGHUP
	}
	if w.Debounce <= 0 {
		w.Debounce = 250 * time.Millisecond
	}
	if w.StopTimeout <= 0 {
		w.StopTimeout = 10 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slogDefault()
	}
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return 0, &WatchError{Dir: w.Dir, Err: err}
	}
	defer watcher.Close()
	if err := watcher.Add(w.Dir); err != nil {
		return 0, &WatchError{Dir: w.Dir, Err: err}
	}

	var pid atomic.Int64
	var restarting atomic.Bool
	target := func() int {
		p := int(pid.Load())
		if o.SignalGroup && p > 0 {
			return -p
		}
		return p
	}
	var mu sync.Mutex
	var timer *time.Timer
	fire := func() {
		p := target()
		if p == 0 {
			return
		}
		if w.Restart {
			restarting.Store(true)
			log.Info("secret files changed; restarting the app", "pid", pid.Load())
			_ = unix.Kill(p, syscall.SIGTERM)
			child := pid.Load()
			time.AfterFunc(w.StopTimeout, func() {
				if pid.Load() == child && restarting.Load() {
					log.Warn("the app did not stop after SIGTERM; killing it", "pid", child)
					_ = unix.Kill(p, syscall.SIGKILL)
				}
			})
			return
		}
		if err := unix.Kill(p, w.Signal); err != nil {
			log.Warn("cannot signal the app", "pid", p, "err", err)
			return
		}
		log.Info("secret files changed; signalled the app", "signal", unix.SignalName(w.Signal), "pid", pid.Load())
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case err, ok := <-watcher.Errors:
				if !ok {
					return
				}
				log.Warn("watching the secrets directory", "dir", w.Dir, "err", err)
			case ev, ok := <-watcher.Events:
				if !ok {
					return
				}
				if strings.HasPrefix(filepath.Base(ev.Name), ".") || !ev.Has(fsnotify.Create|fsnotify.Write|fsnotify.Rename|fsnotify.Remove) {
					continue
				}
				mu.Lock()
				if timer == nil {
					timer = time.AfterFunc(w.Debounce, fire)
				} else {
					timer.Reset(w.Debounce)
				}
				mu.Unlock()
			}
		}
	}()

	started := o.Started
	for {
		o.Started = func(ctx context.Context, p int) {
			pid.Store(int64(p))
			if started != nil {
				started(ctx, p)
			}
		}
		code, err := Supervise(path, argv, env, o)
		pid.Store(0)
		if err != nil || !restarting.Swap(false) {
			return code, err
		}
	}
}

func slogDefault() *slog.Logger { return slog.Default() }

// ParseSignal reads "SIGHUP", "HUP" or a number.
func ParseSignal(name string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(name); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	up := strings.ToUpper(name)
	if !strings.HasPrefix(up, "SIG") {
		up = "SIG" + up
	}
	if s := unix.SignalNum(up); s != 0 {
		return s, nil
	}
	return 0, fmt.Errorf("unknown signal %q (e.g. SIGHUP, SIGUSR1)", name)
}
