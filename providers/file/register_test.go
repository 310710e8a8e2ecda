package file

import "github.com/secretbroker/secretbroker/providers"

// The package's tests parse file:// references, as a binary does once
// providers/builtin has registered the descriptor.
func init() { providers.Register(Descriptor()) }
