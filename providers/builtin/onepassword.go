//go:build !noonepassword

package builtin

import (
	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/providers/onepassword"
)

func init() {
	providers.Register(onepassword.Descriptor())
}
