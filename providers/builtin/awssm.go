//go:build !noawssm

package builtin

import (
	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/providers/awssm"
)

func init() {
	providers.Register(providers.Registration{Scheme: awssm.Scheme, Block: awssm.Block, New: awssm.New, Identity: awssm.Identity})
}
