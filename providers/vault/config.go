package vault

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// DefaultServiceAccountTokenFile is where Kubernetes mounts a pod's
// service-account token.
const DefaultServiceAccountTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// Config is the providers.vault block. Empty fields fall back to Vault's
// standard variables (VAULT_ADDR, VAULT_NAMESPACE, VAULT_CACERT,
// VAULT_CAPATH, VAULT_TLS_SERVER_NAME, VAULT_CLIENT_CERT, VAULT_CLIENT_KEY,
// VAULT_TOKEN); a value in the block wins over the variable.
type Config struct {
	Address    string `mapstructure:"address"`
	Namespace  string `mapstructure:"namespace"`
	CAFile     string `mapstructure:"ca_file"`
	CAPath     string `mapstructure:"ca_path"`
	ServerName string `mapstructure:"server_name"`
	ClientCert string `mapstructure:"client_cert"`
	ClientKey  string `mapstructure:"client_key"`
	Auth       Auth   `mapstructure:"auth"`
	// KV maps a mount (without slashes) to its KV version (1 or 2; 0 for
	// a mount that is not KV), used when Vault will not tell the mount's
	// type (the token may not read sys/internal/ui/mounts) and by
	// `inject policy vault` without a live Vault.
	KV map[string]int `mapstructure:"kv"`
	// MaxRetries is how many times a request is retried on a 5xx answer
	// or a connection error, with jittered backoff, within the deadline.
	// Default 2; -1 disables retries.
	MaxRetries *int `mapstructure:"max_retries"`
}

// Auth is providers.vault.auth.
type Auth struct {
	// Method is token, approle, kubernetes or jwt; default token.
	Method string `mapstructure:"method"`
	// Mount is the auth method's mount path; default the method's name.
	Mount string `mapstructure:"mount"`

	// token
	TokenFile string `mapstructure:"token_file"`

	// approle
	RoleID             string `mapstructure:"role_id"`
	RoleIDFile         string `mapstructure:"role_id_file"`
	SecretID           string `mapstructure:"secret_id"`
	SecretIDFile       string `mapstructure:"secret_id_file"`
	RemoveSecretIDFile bool   `mapstructure:"remove_secret_id_file"`
	// SecretIDWrappingPath, when set, says the secret id is a
	// response-wrapping token whose creation path must be this (as in
	// Vault Agent's secret_id_response_wrapping_path), e.g.
	// auth/approle/role/app/secret-id. It is unwrapped before login.
	SecretIDWrappingPath string `mapstructure:"secret_id_response_wrapping_path"`

	// kubernetes, jwt
	Role    string `mapstructure:"role"`
	JWTFile string `mapstructure:"jwt_file"`
}

// Auth methods.
const (
	MethodToken      = "token"
	MethodAppRole    = "approle"
	MethodKubernetes = "kubernetes"
	MethodJWT        = "jwt"
)

// ParseConfig decodes a providers.vault block (as viper gives it: keys
// lower-cased) and fills empty fields from Vault's standard variables
// through getenv. Every problem is reported at once, each with its key.
func ParseConfig(block map[string]any, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var cfg Config
	var md mapstructure.Metadata
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:           &cfg,
		Metadata:         &md,
		WeaklyTypedInput: true,
		ErrorUnused:      false,
	})
	if err != nil {
		return cfg, err
	}
	if err := dec.Decode(block); err != nil {
		return cfg, fmt.Errorf("providers.vault: %w", err)
	}
	var problems []string
	if len(md.Unused) > 0 {
		sort.Strings(md.Unused)
		for _, k := range md.Unused {
			problems = append(problems, fmt.Sprintf("providers.vault.%s: unknown key", k))
		}
	}
	env := func(field *string, name string) {
		if *field == "" {
			*field = strings.TrimSpace(getenv(name))
		}
	}
	env(&cfg.Address, "VAULT_ADDR")
	env(&cfg.Namespace, "VAULT_NAMESPACE")
	env(&cfg.CAFile, "VAULT_CACERT")
	env(&cfg.CAPath, "VAULT_CAPATH")
	env(&cfg.ServerName, "VAULT_TLS_SERVER_NAME")
	env(&cfg.ClientCert, "VAULT_CLIENT_CERT")
	env(&cfg.ClientKey, "VAULT_CLIENT_KEY")

	a := &cfg.Auth
	a.Method = strings.ToLower(strings.TrimSpace(a.Method))
	if a.Method == "" {
		a.Method = MethodToken
	}
	if a.Mount == "" && a.Method != MethodToken {
		a.Mount = a.Method
	}
	a.Mount = strings.Trim(a.Mount, "/")
	both := func(v, f, key string) {
		if v != "" && f != "" {
			problems = append(problems, fmt.Sprintf("providers.vault.auth: give %s or %s_file, not both", key, key))
		}
	}
	unused := func(keys map[string]bool) {
		for k, set := range keys {
			if set {
				problems = append(problems, fmt.Sprintf("providers.vault.auth.%s: not used by auth method %q", k, a.Method))
			}
		}
	}
	switch a.Method {
	case MethodToken:
		unused(map[string]bool{"role_id": a.RoleID != "", "role_id_file": a.RoleIDFile != "", "secret_id": a.SecretID != "", "secret_id_file": a.SecretIDFile != "", "role": a.Role != "", "jwt_file": a.JWTFile != "", "mount": a.Mount != ""})
	case MethodAppRole:
		both(a.RoleID, a.RoleIDFile, "role_id")
		both(a.SecretID, a.SecretIDFile, "secret_id")
		if a.RoleID == "" && a.RoleIDFile == "" {
			problems = append(problems, "providers.vault.auth: approle needs role_id or role_id_file")
		}
		if a.RemoveSecretIDFile && a.SecretIDFile == "" {
			problems = append(problems, "providers.vault.auth.remove_secret_id_file: needs secret_id_file")
		}
		if a.SecretIDWrappingPath != "" && a.SecretID == "" && a.SecretIDFile == "" {
			problems = append(problems, "providers.vault.auth.secret_id_response_wrapping_path: needs secret_id or secret_id_file holding the wrapping token")
		}
		unused(map[string]bool{"token_file": a.TokenFile != "", "role": a.Role != "", "jwt_file": a.JWTFile != ""})
	case MethodKubernetes, MethodJWT:
		if a.Role == "" {
			problems = append(problems, fmt.Sprintf("providers.vault.auth: %s needs role", a.Method))
		}
		if a.JWTFile == "" {
			if a.Method == MethodJWT {
				problems = append(problems, "providers.vault.auth: jwt needs jwt_file")
			} else {
				a.JWTFile = DefaultServiceAccountTokenFile
			}
		}
		unused(map[string]bool{"token_file": a.TokenFile != "", "role_id": a.RoleID != "", "role_id_file": a.RoleIDFile != "", "secret_id": a.SecretID != "", "secret_id_file": a.SecretIDFile != ""})
	default:
		problems = append(problems, fmt.Sprintf("providers.vault.auth.method: %q is not one of token, approle, kubernetes, jwt", a.Method))
	}
	for m, v := range cfg.KV {
		if v < 0 || v > 2 {
			problems = append(problems, fmt.Sprintf("providers.vault.kv.%s: %d is not a KV version (1, 2, or 0 for a mount that is not KV)", m, v))
		}
	}
	if (cfg.ClientCert == "") != (cfg.ClientKey == "") {
		problems = append(problems, "providers.vault: client_cert and client_key go together")
	}
	if cfg.MaxRetries != nil && *cfg.MaxRetries < -1 {
		problems = append(problems, "providers.vault.max_retries: must be -1 (none) or more")
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return cfg, &ConfigError{Problems: problems}
	}
	return cfg, nil
}

// ConfigError lists every problem of a providers.vault block.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string { return strings.Join(e.Problems, "; ") }

// hintedMount is the mount holding path according to the kv hints: the
// longest hinted mount that prefixes it.
func (c Config) hintedMount(path string) (mountInfo, bool) {
	best, version := "", 0
	for m, v := range c.KV {
		m = strings.Trim(m, "/")
		if m != "" && (path == m || strings.HasPrefix(path, m+"/")) && len(m) > len(best) {
			best, version = m, v
		}
	}
	if best == "" {
		return mountInfo{}, false
	}
	m := mountInfo{path: best + "/", version: version}
	if version > 0 {
		m.kind = "kv"
	}
	return m, true
}

var errNoToken = errors.New("no Vault token: set VAULT_TOKEN, providers.vault.auth.token_file, or another auth method (approle, kubernetes, jwt)")
