package webhook

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/secretbroker/secretbroker/providers"
)

// The annotations a pod opts in with. Every other key under Prefix is an
// error: a typo must deny the pod, never be skipped.
const (
	Prefix          = "secretbroker.io/"
	AnnInject       = Prefix + "inject"     // "true" to inject, "false" or absent to leave alone
	AnnSecretPrefix = Prefix + "secret-"    // secret-NAME: REFERENCE
	AnnConfig       = Prefix + "config"     // CONFIGMAP[/KEY]: a whole declaration
	AnnRefresh      = Prefix + "refresh"    // a duration: the broker as a native sidecar
	AnnContainers   = Prefix + "containers" // a,b: the containers to wrap (default: all)
	AnnUser         = Prefix + "user"       // UID[:GID]: the app's user, owner of the files
	AnnDir          = Prefix + "dir"        // the secrets directory (default DefaultDir)
	// AnnStatus is set by the webhook on the pods it mutated; a pod that
	// carries it is admitted unchanged (re-admission is idempotent).
	AnnStatus = Prefix + "status"
)

// DefaultDir is the secrets directory when the pod names none. The memory
// volume is mounted at its parent: Kubernetes creates an emptyDir with mode
// 0777 and no sticky bit, which inject and the broker refuse, so the files
// live in a subdirectory they create with mode 0700.
const DefaultDir = "/run/secretbroker/app"

// DefaultConfigKey is the ConfigMap key read when secretbroker.io/config
// names no key.
const DefaultConfigKey = "broker.yaml"

// Plan is what a pod's annotations ask for.
type Plan struct {
	Secrets    []Secret      // sorted by name
	ConfigMap  string        // the ConfigMap holding a declaration, or ""
	ConfigKey  string        // its key
	Refresh    time.Duration // 0: no broker
	Containers []string      // nil: every container
	User       string
	Dir        string
}

// Secret is one secretbroker.io/secret-NAME annotation.
type Secret struct {
	Name string // the file name in Dir
	Ref  string // the reference as written
	Env  string // the variable the reference travels in (NAME upper-cased)
}

// secretName is what a secret annotation may be called: the name becomes a
// file (NAME) and an environment variable (NAME upper-cased, and NAME_FILE
// for the app), so it is limited to what both accept.
var secretName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

var userRE = regexp.MustCompile(`^[0-9]+(:[0-9]+)?$|^[a-z_][a-z0-9_-]*(:[a-z_][a-z0-9_-]*)?$`)

// InvalidError lists every invalid annotation of a pod, each named.
type InvalidError struct{ Problems []string }

func (e *InvalidError) Error() string {
	return "secretbroker: invalid annotations: " + strings.Join(e.Problems, "; ")
}

// ParsePlan reads a pod's annotations. It returns (nil, nil) when the pod
// does not opt in, and an *InvalidError naming each bad annotation.
func ParsePlan(ann map[string]string) (*Plan, error) {
	var probs []string
	bad := func(key, format string, a ...any) {
		probs = append(probs, key+": "+fmt.Sprintf(format, a...))
	}
	inject, ok := ann[AnnInject]
	switch {
	case !ok || inject == "false":
		return nil, nil
	case inject != "true":
		return nil, &InvalidError{[]string{fmt.Sprintf("%s: %q is neither \"true\" nor \"false\"", AnnInject, inject)}}
	}
	p := &Plan{Dir: DefaultDir}
	keys := make([]string, 0, len(ann))
	for k := range ann {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := ann[k]
		if !strings.HasPrefix(k, Prefix) {
			continue
		}
		switch {
		case k == AnnInject, k == AnnStatus:
		case strings.HasPrefix(k, AnnSecretPrefix):
			name := strings.TrimPrefix(k, AnnSecretPrefix)
			if !secretName.MatchString(name) {
				bad(k, "the secret name %q must match [a-z][a-z0-9_]* (it becomes the file %s/NAME and the variable NAME_FILE)", name, p.Dir)
				continue
			}
			if _, err := providers.ParseRef(v); err != nil {
				bad(k, "%v", err)
				continue
			}
			p.Secrets = append(p.Secrets, Secret{Name: name, Ref: v, Env: strings.ToUpper(name)})
		case k == AnnConfig:
			cm, key, _ := strings.Cut(v, "/")
			if key == "" {
				key = DefaultConfigKey
			}
			if errs := validation.IsDNS1123Subdomain(cm); len(errs) > 0 {
				bad(k, "%q is not a ConfigMap name: %s", cm, strings.Join(errs, ", "))
				continue
			}
			if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
				bad(k, "%q is not a ConfigMap key: %s", key, strings.Join(errs, ", "))
				continue
			}
			p.ConfigMap, p.ConfigKey = cm, key
		case k == AnnRefresh:
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second {
				bad(k, "%q is not a duration of at least 1s (for example 5m)", v)
				continue
			}
			p.Refresh = d
		case k == AnnContainers:
			for _, c := range strings.Split(v, ",") {
				c = strings.TrimSpace(c)
				if errs := validation.IsDNS1123Label(c); len(errs) > 0 {
					bad(k, "%q is not a container name", c)
					continue
				}
				p.Containers = append(p.Containers, c)
			}
		case k == AnnUser:
			if !userRE.MatchString(v) {
				bad(k, "%q is not UID[:GID] or NAME[:GROUP]", v)
				continue
			}
			p.User = v
		case k == AnnDir:
			c := path.Clean(v)
			if !path.IsAbs(v) || c != v || path.Dir(c) == "/" || slices.Contains(systemDirs, path.Dir(c)) {
				bad(k, "%q must be a clean absolute path at least two levels deep (the memory volume is mounted at its parent, not at /, /etc, /bin, ...)", v)
				continue
			}
			p.Dir = c
		default:
			bad(k, "unknown annotation (known: inject, secret-NAME, config, refresh, containers, user, dir)")
		}
	}
	if len(p.Secrets) == 0 && p.ConfigMap == "" && len(probs) == 0 {
		probs = append(probs, AnnInject+": no secret-NAME and no config annotation: nothing to inject")
	}
	if len(probs) > 0 {
		return nil, &InvalidError{probs}
	}
	return p, nil
}

// systemDirs are never hidden under the memory volume.
var systemDirs = []string{"/bin", "/sbin", "/lib", "/lib64", "/usr", "/etc", "/proc", "/sys", "/dev", "/var"}
