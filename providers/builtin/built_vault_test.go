//go:build !novault

package builtin_test

func init() { built["vault"] = true }
