//go:build !noawssm

package builtin_test

func init() { built["aws-sm"] = true }
