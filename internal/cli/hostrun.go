package cli

import (
	"log/slog"
	"os"
)

// NoteFilesOutliveExec says, once per run, that in exec mode outside a
// container's PID 1 nothing removes the secret files when the app exits:
// inject is replaced by the app, and on a host the tmpfs directory lives on
// (until removed or the next reboot). In a container's PID 1 the files go
// with the container's tmpfs, so nothing is said there.
func NoteFilesOutliveExec(log *slog.Logger, dir string, files int, supervise bool) {
	if supervise || files == 0 || os.Getpid() == 1 {
		return
	}
	log.Warn("exec mode: the secret files stay in the directory after the app exits (nothing is left to remove them); --supervise removes them when the app exits",
		"dir", dir, "files", files)
}
