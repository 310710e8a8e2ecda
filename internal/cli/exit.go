package cli

import (
	"errors"

	"github.com/secretbroker/secretbroker/policy"
	"github.com/secretbroker/secretbroker/process"
	"github.com/secretbroker/secretbroker/spec"
	"github.com/secretbroker/secretbroker/tmpfs"
)

// Exit codes (docs/reference.md, "Exit codes"): the one vocabulary of
// every command.
const (
	ExitUsage    = 64
	ExitProvider = 69
	ExitDir      = 73
	ExitWait     = 75
	ExitPolicy   = 77
)

// ExitError carries the process exit code for an error.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Exit wraps err with code; nil stays nil.
func Exit(code int, err error) error {
	if err == nil {
		return nil
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	return &ExitError{Code: code, Err: err}
}

// CodeOf is the exit code for err: its ExitError's, else 1.
func CodeOf(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var se *process.StartError
	if errors.As(err, &se) {
		return se.Code
	}
	var pp spec.Problems
	if errors.As(err, &pp) {
		return ExitUsage
	}
	var d policy.Denied
	if errors.As(err, &d) {
		return ExitPolicy
	}
	var te *tmpfs.Error
	if errors.As(err, &te) {
		return ExitDir
	}
	return 1
}
