package spec

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DeclaredSecrets returns the secrets that a declaration file (the YAML
// given with --config or INJECT_CONFIG; nil for none) and the environment
// references in environ declare, under the rules Load applies to them:
// names, references, modes, the NAME_FILE variable of each, collisions. It
// reads nothing else (no flags, no other key, no template, no process
// environment). It exists for a program that wires an app to a broker
// without running either: the admission webhook gives the app's containers
// the NAME_FILE variables of the secrets its broker sidecar will write, and
// must name them exactly as the broker's own Load will.
func DeclaredSecrets(file []byte, environ, envSchemes []string) ([]Secret, error) {
	s := &Spec{Environ: environ, EnvSchemes: envSchemes}
	var probs Problems
	if file != nil {
		var m map[string]any
		if err := yaml.Unmarshal(file, &m); err != nil {
			return nil, fmt.Errorf("not valid YAML: %s", yamlError(err))
		}
		for k, v := range m {
			if strings.EqualFold(k, "secrets") { // viper's keys are case-insensitive
				s.loadSecrets(v, &probs)
			}
		}
	}
	s.loadEnvRefs(&probs)
	s.checkCollisions(&probs)
	if len(probs) > 0 {
		return nil, probs
	}
	return s.Secrets, nil
}
