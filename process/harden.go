package process

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Harden keeps secrets in inject's memory out of core dumps and away from
// same-user ptrace/proc readers: no core file, not dumpable. Exec resets
// dumpability for the app, which is the app's business.
func Harden() {
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0})
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}

// CheckNotSetuid refuses a setuid or setgid install: when the real and
// effective ids differ, the caller is a user who was lent root's powers, and
// everything inject reads on the declaration's behalf (config, policy,
// files) would be read with powers its author does not have.
func CheckNotSetuid() error {
	return checkIDs(os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid())
}

func checkIDs(ruid, euid, rgid, egid int) error {
	if ruid != euid || rgid != egid {
		return fmt.Errorf("refusing to run with real uid:gid %d:%d and effective %d:%d (a setuid or setgid install): run it as root, or as the user itself, never setuid", ruid, rgid, euid, egid)
	}
	return nil
}

// MaxPID is the kernel's PID_MAX_LIMIT: no process id is larger.
const MaxPID = 4194304

// ParsePID reads a process id from a pid file exactly: decimal digits
// without sign or leading zero, surrounding white space ignored, in
// 2..MaxPID. 0, -1 and 1 would make kill(2) signal a process group, every
// process or init, and 4294967295 wraps to -1 in a C int; none is a pid
// to signal.
func ParsePID(s string) (int, error) {
	t := strings.TrimSpace(s)
	if t == "" || (len(t) > 1 && t[0] == '0') {
		return 0, fmt.Errorf("pid %q: want a process id in decimal", t)
	}
	for i := 0; i < len(t); i++ {
		if t[i] < '0' || t[i] > '9' {
			return 0, fmt.Errorf("pid %q: want a process id in decimal", t)
		}
	}
	n, err := strconv.ParseUint(t, 10, 32)
	if err != nil || n < 2 || n > MaxPID {
		return 0, fmt.Errorf("pid %q: out of range (2 to %d)", t, MaxPID)
	}
	return int(n), nil
}
