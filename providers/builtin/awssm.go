//go:build !noawssm

package builtin

import (
	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/providers/awssm"
)

func init() {
	providers.Register(awssm.Descriptor())
}
