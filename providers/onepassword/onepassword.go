// Package onepassword is the 1Password provider: op://VAULT/ITEM[/SECTION]/FIELD
// references, resolved through a 1Password Connect server or, without one,
// a service account and 1Password's Go SDK.
//
// Connect is used when providers.onepassword.connect.host or OP_CONNECT_HOST
// is set; its token comes from connect.token_file or OP_CONNECT_TOKEN. Vault
// and item names are resolved to ids once per provider (so once per inject
// run, and once per broker lifetime) and each distinct item is read once per
// Fetch, however many references point into it.
//
// Otherwise the service account token comes from token_file or
// OP_SERVICE_ACCOUNT_TOKEN and every reference of a Fetch goes to the SDK in
// one ResolveAll call. The SDK runs a 9.5 MB WebAssembly core that takes
// seconds to compile, so its client is made on the first Fetch, never before:
// a spec without op:// references never pays for it. Building with the tag
// noonepassword_sdk leaves the SDK (and its size) out of the binary;
// Connect still works.
package onepassword

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/readgate"
)

// Config is the providers.onepassword block.
type Config struct {
	// TokenFile holds a service account token; default OP_SERVICE_ACCOUNT_TOKEN.
	TokenFile string        `mapstructure:"token_file"`
	Connect   ConnectConfig `mapstructure:"connect"`
}

// ConnectConfig is providers.onepassword.connect.
type ConnectConfig struct {
	// Host is the Connect server's URL; default OP_CONNECT_HOST.
	Host string `mapstructure:"host"`
	// TokenFile holds the Connect access token; default OP_CONNECT_TOKEN.
	TokenFile string `mapstructure:"token_file"`
}

// Environment variables the provider reads.
const (
	EnvServiceAccountToken = "OP_SERVICE_ACCOUNT_TOKEN"
	EnvConnectHost         = "OP_CONNECT_HOST"
	EnvConnectToken        = "OP_CONNECT_TOKEN"
)

// Mode is how the provider reaches 1Password.
type Mode string

const (
	ModeConnect        Mode = "connect"
	ModeServiceAccount Mode = "service account"
)

// Settings are the decoded configuration with the environment applied:
// which way in, where, and the token (never printed).
type Settings struct {
	Mode        Mode
	Host        string // Connect only
	token       string
	tokenSource string // "OP_CONNECT_TOKEN", "token_file /path"...
}

// TokenSource says where the token came from, for messages.
func (s Settings) TokenSource() string { return s.tokenSource }

// Load decodes the config block and applies the environment. A value in
// the config block wins over the variable.
func Load(env providers.Env) (Settings, error) { return load(env, nil) }

// load is Load with the guardrail's gate for the token file (nil: none).
func load(env providers.Env, guard func(id string) error) (Settings, error) {
	var cfg Config
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: &cfg, ErrorUnused: true, WeaklyTypedInput: false})
	if err != nil {
		return Settings{}, err
	}
	if err := dec.Decode(env.Config); err != nil {
		return Settings{}, configErr("providers.onepassword: %v (keys: token_file, connect.host, connect.token_file)", err)
	}
	getenv := env.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	var s Settings
	host, hostFrom := cfg.Connect.Host, "providers.onepassword.connect.host"
	if host == "" {
		host, hostFrom = getenv(EnvConnectHost), EnvConnectHost
	}
	if host != "" {
		s.Mode = ModeConnect
		if s.Host, err = checkHost(host); err != nil {
			return Settings{}, configErr("%s %q: %v", hostFrom, host, err)
		}
		s.token, s.tokenSource, err = readToken(cfg.Connect.TokenFile, "providers.onepassword.connect.token_file", EnvConnectToken, getenv, readgate.Options{User: env.User, Guard: guard})
		if err != nil {
			return Settings{}, err
		}
		if s.token == "" {
			return Settings{}, configErr("Connect at %s needs an access token: set %s or providers.onepassword.connect.token_file", s.Host, EnvConnectToken)
		}
		return s, nil
	}
	if cfg.Connect.TokenFile != "" {
		return Settings{}, configErr("providers.onepassword.connect.token_file is set but no Connect host is: set providers.onepassword.connect.host or %s", EnvConnectHost)
	}
	s.Mode = ModeServiceAccount
	s.token, s.tokenSource, err = readToken(cfg.TokenFile, "providers.onepassword.token_file", EnvServiceAccountToken, getenv, readgate.Options{User: env.User, Guard: guard})
	if err != nil {
		return Settings{}, err
	}
	if s.token == "" {
		return Settings{}, configErr("no 1Password credential: set %s (a service account token) or providers.onepassword.token_file, "+
			"or point %s / providers.onepassword.connect.host at a Connect server", EnvServiceAccountToken, EnvConnectHost)
	}
	return s, nil
}

func configErr(format string, args ...any) error {
	return &providers.Error{Ref: "1Password", Kind: providers.KindConfig, Detail: fmt.Sprintf(format, args...)}
}

func checkHost(h string) (string, error) {
	h = strings.TrimRight(strings.TrimSpace(h), "/")
	scheme, rest, ok := strings.Cut(h, "://")
	if !ok || (scheme != "http" && scheme != "https") || rest == "" {
		return "", errors.New("want a URL such as http://onepassword-connect:8080")
	}
	if strings.ContainsAny(rest, "?#") {
		return "", errors.New("want a URL with no query or fragment")
	}
	return h, nil
}

// readToken reads a token from file (when set) or the variable. The token's
// text never appears in an error.
// The file passes the read gate (readgate): the guardrail, --user's
// permissions, a regular file outside /proc and /sys, at most 64 KiB.
func readToken(file, key, variable string, getenv func(string) string, gate readgate.Options) (token, source string, err error) {
	if file != "" {
		gate.Max, gate.What = 64<<10, key
		b, err := readgate.ReadFile(file, gate)
		if err != nil {
			var ge *readgate.Error
			if errors.As(err, &ge) {
				return "", "", configErr("%s: cannot read %s: %s", key, file, strings.TrimPrefix(ge.Error(), ge.Path+": "))
			}
			return "", "", configErr("%s: cannot read %s: %v", key, file, err)
		}
		t := strings.TrimSpace(string(b))
		clear(b)
		if t == "" {
			return "", "", configErr("%s: %s is empty", key, file)
		}
		if strings.ContainsAny(t, "\r\n\t ") {
			return "", "", configErr("%s: %s holds more than one line or word; it should hold the token alone", key, file)
		}
		return t, key + " " + file, nil
	}
	return strings.TrimSpace(getenv(variable)), variable, nil
}

// New is the providers.Factory for the op scheme.
func New(ctx context.Context, env providers.Env) (providers.Provider, error) {
	s, err := load(env, providers.FileGateFrom(ctx))
	if err != nil {
		return nil, err
	}
	if s.Mode == ModeConnect {
		return newConnect(s, env), nil
	}
	return newServiceAccount(s, env)
}

// redact removes the token from a message from 1Password or the network.
func redact(msg, token string) string {
	if token == "" {
		return msg
	}
	return strings.ReplaceAll(msg, token, "[redacted]")
}

// quoteList quotes and sorts names for "what exists" messages.
func quoteList(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	seen := map[string]bool{}
	q := make([]string, 0, len(names))
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			q = append(q, strconv.Quote(n))
		}
	}
	sort.Strings(q)
	const max = 30
	if len(q) > max {
		return strings.Join(q[:max], ", ") + fmt.Sprintf(" and %d more", len(q)-max)
	}
	return strings.Join(q, ", ")
}

// RateLimited is the error after 1Password kept refusing for its rate limit.
type RateLimited struct {
	Attempts int
	Waited   time.Duration
	Err      error
}

func (e *RateLimited) Error() string {
	return fmt.Sprintf("1Password rate-limited the requests (service accounts have hourly and daily limits); "+
		"backed off %d time(s) over %s within the deadline, still limited; wait and retry, or raise --timeout: %v",
		e.Attempts-1, e.Waited.Round(time.Millisecond), e.Err)
}

func (e *RateLimited) Unwrap() error { return e.Err }

// backoff is the first wait after a rate-limited request; it doubles, with
// jitter, on each retry. A var so tests can shorten it.
var backoff = 500 * time.Millisecond

const maxAttempts = 4

// withBackoff runs op until it succeeds, fails for another reason than a rate
// limit, or the next wait would pass ctx's deadline.
func withBackoff(ctx context.Context, limited func(error) bool, op func() error) error {
	start := time.Now()
	wait := backoff
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || !limited(err) {
			return err
		}
		if attempt == maxAttempts {
			return &RateLimited{Attempts: attempt, Waited: time.Since(start), Err: err}
		}
		d := wait/2 + rand.N(wait)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return &RateLimited{Attempts: attempt, Waited: time.Since(start), Err: err}
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return &RateLimited{Attempts: attempt, Waited: time.Since(start), Err: err}
		}
		wait *= 2
	}
}
