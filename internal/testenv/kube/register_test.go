package kube

import "github.com/secretbroker/secretbroker/providers"

// The webhook parses references through the provider registry, which a
// deployed webhook fills from providers/builtin. This module does not link
// the providers (nor their SDKs), so a stand-in for the one scheme these
// tests use is registered: its references must parse; nothing is fetched.
func init() {
	providers.Register(providers.Registration{Scheme: "vault", Block: "vault", EnvRef: true,
		Syntax: providers.Syntax{Params: []string{"version"}, Key: true, TrimLead: true}})
}
