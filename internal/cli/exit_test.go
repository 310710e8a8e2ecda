package cli

import (
	"bytes"
	"errors"
	"testing"
)

func TestExitKeepsTheFirstCode(t *testing.T) {
	if Exit(ExitDir, nil) != nil {
		t.Fatal("Exit(nil) is not nil")
	}
	err := Exit(ExitDir, Exit(ExitPolicy, errors.New("x")))
	if CodeOf(err) != ExitPolicy {
		t.Fatalf("code %d, want %d", CodeOf(err), ExitPolicy)
	}
	if CodeOf(errors.New("plain")) != 1 {
		t.Fatal("a plain error is not 1")
	}
	var buf bytes.Buffer
	buf.WriteString(err.Error())
	if buf.String() != "x" {
		t.Fatalf("message %q", buf.String())
	}
}
