// Command sizemain is the smallest program that links the 1Password
// provider, for measuring what the provider (and 1Password's SDK) add to a
// binary's size and start-up: BenchmarkBinary in the parent package builds
// it three ways (-tags sizebase: without the provider; default; -tags
// noonepassword_sdk) and runs each.
package main

import (
	"fmt"
	"os"

	"github.com/secretbroker/secretbroker/providers"
)

var register func()

func main() {
	if register != nil {
		register()
	}
	fmt.Fprintln(os.Stdout, len(providers.Registered()))
}
