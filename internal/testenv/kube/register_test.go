package kube

import "github.com/secretbroker/secretbroker/providers"

// The webhook parses references through the provider registry, which a
// deployed webhook fills from providers/builtin. This module does not link
// the providers (nor their SDKs), so stand-ins for the schemes these tests
// use are registered with the same syntax as the real descriptors
// (providers/vault, providers/awssm): their references must parse; nothing
// is fetched.
func init() {
	providers.Register(providers.Registration{Scheme: "vault", Block: "vault", EnvRef: true,
		Syntax: providers.Syntax{Params: []string{"version"}, Key: true, TrimLead: true}})
	providers.Register(providers.Registration{Scheme: "aws-sm", Block: "aws", EnvRef: true,
		Syntax: providers.Syntax{Params: []string{"region", "version-id", "version-stage"}, Key: true}})
}
