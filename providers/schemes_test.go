package providers

// Stand-ins for the schemes the tests of this package use. The real
// grammars live in each provider's descriptor (registered by
// providers/builtin, whose tests cover them); these tests only need
// references that parse, under names that read naturally.
func init() {
	for _, sc := range []string{"vault", "aws-sm", "op", "file"} {
		Register(Registration{Scheme: sc, Block: sc, Syntax: Syntax{Key: true}})
	}
}
