package process

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/secretbroker/secretbroker/identity"
)

// StartError is a failure to start the app: Code is 126 (not executable)
// or 127 (not found), as shells use.
type StartError struct {
	Code int
	Msg  string
}

func (e *StartError) Error() string { return e.Msg }

// LookPath finds argv0 on the app's PATH (not inject's), and tells 127 from
// 126 the way a shell does.
func LookPath(argv0 string, env []string) (string, error) {
	if strings.Contains(argv0, "/") {
		return checkExecutable(argv0)
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	var notExec string
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, argv0)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			if fi.Mode()&0o111 != 0 {
				return p, nil
			}
			notExec = p
		}
	}
	if notExec != "" {
		return "", &StartError{Code: 126, Msg: fmt.Sprintf("%s is not executable", notExec)}
	}
	return "", &StartError{Code: 127, Msg: fmt.Sprintf("command %q not found on PATH (%s)", argv0, shortPath(path))}
}

// shortPath is PATH for a one-line message: a long PATH (a developer's
// has a dozen directories) hides the command name, so only the first
// three directories are named, with how many more there are.
func shortPath(path string) string {
	dirs := filepath.SplitList(path)
	if len(dirs) <= 4 {
		return path
	}
	return fmt.Sprintf("%s and %d more", strings.Join(dirs[:3], string(filepath.ListSeparator)), len(dirs)-3)
}

func checkExecutable(p string) (string, error) {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", &StartError{Code: 127, Msg: fmt.Sprintf("command %s not found", p)}
	case err != nil:
		return "", &StartError{Code: 126, Msg: fmt.Sprintf("command %s: %v", p, err)}
	case fi.IsDir():
		return "", &StartError{Code: 126, Msg: fmt.Sprintf("%s is a directory", p)}
	case fi.Mode()&0o111 == 0:
		return "", &StartError{Code: 126, Msg: fmt.Sprintf("%s is not executable", p)}
	}
	return p, nil
}

// CheckDrop reports, before anything is created, whether DropPrivileges(id)
// can succeed: setgroups, setgid and setuid need root, so a non-root
// inject cannot honour --user (not even its own uid: setgroups alone needs
// CAP_SETGID). Without it the run would write the files and fail only at
// the app's start.
func CheckDrop(id *identity.Identity) error {
	if id == nil || os.Geteuid() == 0 {
		return nil
	}
	return fmt.Errorf("--user %s needs root: inject runs as uid %d, and only root can give the files to another user and start the app as it; run inject as root (the container's default user) and keep --user, or drop --user and run the container as that user", id, os.Geteuid())
}

// DropPrivileges switches the whole process to id: supplementary groups,
// then group, then user (the order matters: after setuid the others are
// no longer allowed). Go applies these to every thread.
func DropPrivileges(id *identity.Identity) error {
	if id == nil {
		return nil
	}
	groups := id.Groups
	if groups == nil {
		groups = []int{}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups for %s: %w (dropping to --user needs root)", id, err)
	}
	if err := syscall.Setgid(id.GID); err != nil {
		return fmt.Errorf("setgid %d: %w", id.GID, err)
	}
	if err := syscall.Setuid(id.UID); err != nil {
		return fmt.Errorf("setuid %d: %w", id.UID, err)
	}
	return nil
}

// Exec replaces inject with the app. It returns only on failure.
func Exec(path string, argv, env []string) error {
	err := unix.Exec(path, argv, env)
	code := 126
	if errors.Is(err, unix.ENOENT) {
		code = 127
	}
	return &StartError{Code: code, Msg: fmt.Sprintf("cannot execute %s: %v", path, err)}
}
