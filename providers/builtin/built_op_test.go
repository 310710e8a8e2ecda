//go:build !noonepassword

package builtin_test

func init() { built["op"] = true }
