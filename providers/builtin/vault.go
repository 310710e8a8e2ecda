//go:build !novault

package builtin

import (
	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/providers/vault"
)

func init() {
	providers.Register(providers.Registration{Scheme: vault.Scheme, Block: vault.Block, New: vault.New, Identity: vault.Identity})
}
