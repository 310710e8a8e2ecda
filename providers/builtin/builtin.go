// Package builtin registers the providers a binary is built with. inject and
// broker import it for its side effect, so both carry the same providers and
// the list lives in one place. Build tags leave a provider out:
// noawssm, noonepassword (and noonepassword_sdk for the service-account SDK
// alone, see providers/onepassword), novault.
package builtin

import (
	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/providers/file"
)

func init() {
	providers.Register(file.Descriptor())
}
