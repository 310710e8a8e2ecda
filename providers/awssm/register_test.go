package awssm

import "github.com/secretbroker/secretbroker/providers"

// The package's tests parse aws-sm:// references, as a binary does once
// providers/builtin has registered the descriptor, and other:// ones, a
// stand-in for any other scheme, which this provider must pass over.
func init() {
	providers.Register(Descriptor())
	providers.Register(providers.Registration{Scheme: "other", Block: "other", Syntax: providers.Syntax{Key: true}})
}
