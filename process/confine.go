package process

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/secretbroker/secretbroker/identity"
)

// capNames are the capabilities of capability.h, by number.
var capNames = []string{
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill",
	"setgid", "setuid", "setpcap", "linux_immutable", "net_bind_service",
	"net_broadcast", "net_admin", "net_raw", "ipc_lock", "ipc_owner",
	"sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
	"sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time",
	"sys_tty_config", "mknod", "lease", "audit_write", "audit_control",
	"setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm",
	"block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
}

// ParseCapabilities reads capability names as docker and capsh write them
// (CAP_NET_BIND_SERVICE, net_bind_service; any case). An unknown name is
// an error, not ignored: a typo would silently drop what was meant.
func ParseCapabilities(names []string) ([]int, error) {
	var out []int
	var bad []string
	for _, n := range names {
		key := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(n)), "cap_")
		i := -1
		for j, c := range capNames {
			if c == key {
				i = j
			}
		}
		if i < 0 {
			bad = append(bad, fmt.Sprintf("%q", n))
			continue
		}
		out = append(out, i)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("unknown capability %s (names as in capabilities(7), such as CAP_NET_BIND_SERVICE)", strings.Join(bad, ", "))
	}
	return out, nil
}

// Confinement is what the app is started under, beyond its user.
type Confinement struct {
	User       *identity.Identity
	NoNewPrivs bool  // PR_SET_NO_NEW_PRIVS: exec can never grant more (setuid bits, file capabilities)
	KeepCaps   []int // under User, the bounding set keeps only these; without User it is left alone
}

// Confine drops to c.User and applies the rest to the calling goroutine's
// OS thread, which it locks for good: the bounding set and no_new_privs
// are per thread, and the app is exec'd (or forked under --supervise) from
// this thread, so it inherits exactly them. Call it from the goroutine
// that execs or starts the app, and keep that goroutine until it has.
//
// The order matters: the bounding set is cleared while inject still has
// CAP_SETPCAP (before setuid); no_new_privs last.
func Confine(c Confinement) error {
	runtime.LockOSThread()                  // never unlocked: this thread now differs from the others
	if c.User != nil && os.Geteuid() == 0 { // not root: CheckDrop has said --user needs root
		if err := clearBounding(c.KeepCaps); err != nil {
			return err
		}
	}
	if err := DropPrivileges(c.User); err != nil {
		return err
	}
	if c.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("--no-new-privileges: prctl(PR_SET_NO_NEW_PRIVS): %w", err)
		}
	}
	return nil
}

// clearBounding drops every capability from this thread's bounding set
// but keep.
func clearBounding(keep []int) error {
	last := lastCap()
	for c := 0; c <= last; c++ {
		if slices.Contains(keep, c) {
			continue
		}
		err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0)
		if err != nil && err != unix.EINVAL { // EINVAL: a capability this kernel lacks
			return fmt.Errorf("clearing the capability bounding set for --user: %w", err)
		}
	}
	return nil
}

// lastCap is the kernel's highest capability number.
func lastCap() int {
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= 0 && n < 64 {
			return n
		}
	}
	return len(capNames) - 1
}
