package process

import (
	"fmt"
	"os"

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
