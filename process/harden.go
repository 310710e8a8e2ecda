package process

import "golang.org/x/sys/unix"

// Harden keeps secrets in inject's memory out of core dumps and away from
// same-user ptrace/proc readers: no core file, not dumpable. Exec resets
// dumpability for the app, which is the app's business.
func Harden() {
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0})
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
