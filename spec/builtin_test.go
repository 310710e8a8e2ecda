package spec

// The tests read references of every built-in scheme, as the commands do
// once providers/builtin has registered the providers' descriptors.
import _ "github.com/secretbroker/secretbroker/providers/builtin"
