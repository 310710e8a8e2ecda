package file

import "github.com/secretbroker/secretbroker/providers"

// Scheme and Block are the names this provider is registered under.
const (
	Scheme = "file"
	Block  = "file"
)

// Descriptor is everything the rest of the program knows about file://
// references; providers/builtin registers it. A file:// value in the
// environment is not a reference by default (EnvRef false): ordinary
// variables hold file:// URLs. The provider needs no credential, and has
// no provider-side grant to print or audit.
func Descriptor() providers.Registration {
	return providers.Registration{
		Scheme:   Scheme,
		Block:    Block,
		New:      Open,
		Identity: Identity,
		// Its identity is a local file's absolute real path.
		Syntax: providers.Syntax{Key: true, Local: true},
	}
}
