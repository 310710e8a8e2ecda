//go:build !sizebase

package main

import (
	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/providers/onepassword"
)

func init() {
	register = func() {
		providers.Register(onepassword.Descriptor())
	}
}
