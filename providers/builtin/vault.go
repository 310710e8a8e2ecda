//go:build !novault

package builtin

import (
	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/providers/vault"
)

func init() {
	providers.Register(vault.Descriptor())
}
