// Package file is the local-file provider: file://PATH[#KEY] reads a YAML,
// JSON or dotenv file (chosen by extension) or, for any other extension, the
// raw file. It needs no server, so the quickstart and tests run anywhere,
// and it is the development stand-in for the cloud providers.
package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/joho/godotenv"
	"go.yaml.in/yaml/v3"

	"github.com/secretbroker/secretbroker/identity"
	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/readgate"
	"github.com/secretbroker/secretbroker/secret"
)

// MaxFileBytes caps what one file may hold; a secrets file is small, and a
// mistaken reference to a disk image should not fill memory.
const MaxFileBytes = 16 << 20

// Config is the providers.file block.
type Config struct {
	// Root is what relative paths resolve against; default the config
	// file's directory. A relative root resolves against that directory too.
	Root string `mapstructure:"root"`
}

// Provider reads local files.
type Provider struct {
	root string
	user *identity.Identity
}

// New returns a file provider. When user is non-nil, a file that user could
// not read by its owner and mode bits is refused, so inject running as root
// never reads on the app's behalf what the app may not. configDir is the
// config file's directory ("" or "." for the working directory).
func New(cfg Config, user *identity.Identity, configDir string) (*Provider, error) {
	root, err := rootOf(cfg, configDir)
	if err != nil {
		return nil, err
	}
	return &Provider{root: root, user: user}, nil
}

func rootOf(cfg Config, configDir string) (string, error) {
	if configDir == "" {
		configDir = "."
	}
	root := cfg.Root
	switch {
	case root == "":
		root = configDir
	case !filepath.IsAbs(root):
		root = filepath.Join(configDir, root)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("providers.file.root %q: %w", cfg.Root, err)
	}
	return abs, nil
}

// Path is where ref's file is: absolute paths as they are, relative ones
// under the root.
func (p *Provider) Path(ref providers.Ref) string {
	if filepath.IsAbs(ref.Path) {
		return ref.Path
	}
	return filepath.Join(p.root, ref.Path)
}

// Identity is the canonical identity of a file:// reference under env's
// settings: "file://" and the absolute path with every symlink resolved,
// which is what the policies match (a root chosen by the workload, a
// symlink or a "%2F" cannot make one file look like another).
func Identity(ref providers.Ref, env providers.Env) (string, error) {
	var cfg Config
	if err := mapstructure.Decode(env.Config, &cfg); err != nil {
		return "", fmt.Errorf("providers.file: %v", err)
	}
	root, err := rootOf(cfg, env.ConfigDir)
	if err != nil {
		return "", err
	}
	return readgate.Identity((&Provider{root: root}).Path(ref))
}

// Fetch reads each distinct file once, however many references point into it.
func (p *Provider) Fetch(ctx context.Context, refs []providers.Ref) []providers.Result {
	type parsed struct {
		data any
		raw  []byte
		err  error
	}
	cache := map[string]*parsed{}
	out := make([]providers.Result, len(refs))
	for i, ref := range refs {
		if err := ctx.Err(); err != nil {
			out[i].Err = &providers.Error{Ref: ref.Raw, Kind: providers.KindTimeout, Detail: "the deadline (--timeout) passed"}
			continue
		}
		path := p.Path(ref)
		f, ok := cache[path]
		if !ok {
			f = &parsed{}
			f.raw, f.data, f.err = p.load(ctx, path)
			cache[path] = f
		}
		if f.err != nil {
			out[i].Err = &providers.Error{Ref: ref.Raw, Kind: providers.KindOf(f.err), Detail: path, Err: unwrapDetail(f.err)}
			continue
		}
		var v secret.Value
		var err error
		if f.data == nil {
			if ref.HasKey {
				err = providers.Errorf(ref, providers.KindInvalid, "%s is read as raw bytes and has no keys; use a .yaml, .yml, .json or .env file to select #%s", path, ref.Key)
			} else {
				v = secret.New(bytes.Clone(f.raw))
			}
		} else {
			v, err = providers.Extract(ref, f.data)
		}
		out[i] = providers.Result{Secret: providers.Secret{Value: v}, Err: err}
	}
	return out
}

// load reads and decodes one file through the read gate: the policies in
// force (the request-time check on the file's real path), --user's
// permissions, regular files only, never /proc or /sys, capped. Errors are
// *providers.Error with an empty Ref; Fetch fills in each reference.
func (p *Provider) load(ctx context.Context, path string) ([]byte, any, error) {
	raw, err := readgate.ReadFile(path, readgate.Options{
		User:  p.user,
		Guard: func(id string) error { return providers.CheckGate(ctx, id) },
		Max:   MaxFileBytes,
		What:  "secrets file",
	})
	if err != nil {
		var ge *readgate.Error
		if !errors.As(err, &ge) {
			return nil, nil, &providers.Error{Kind: providers.KindOther, Err: err}
		}
		kind := map[readgate.Kind]providers.Kind{
			readgate.KindNotFound: providers.KindNotFound,
			readgate.KindDenied:   providers.KindDenied,
			readgate.KindInvalid:  providers.KindInvalid,
		}[ge.Kind]
		return nil, nil, &providers.Error{Kind: kind, Detail: ge.Msg, Err: ge.Err}
	}
	var data any
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".yaml", ".yml":
		err = yaml.Unmarshal(raw, &data)
		if data == nil && err == nil {
			data = map[string]any{}
		}
	case ".json":
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		err = d.Decode(&data)
	case ".env":
		var m map[string]string
		m, err = godotenv.UnmarshalBytes(raw)
		if err == nil {
			obj := make(map[string]any, len(m))
			for k, v := range m {
				obj[k] = v
			}
			data = obj
		}
	default:
		return raw, nil, nil
	}
	if err != nil {
		// Parser messages can quote the line they choke on, which may hold a
		// secret, so report only that the file does not parse.
		return nil, nil, &providers.Error{Kind: providers.KindInvalid, Detail: fmt.Sprintf("not valid %s (the parser's message is withheld because it may quote file contents)", strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), "."))}
	}
	return raw, data, nil
}

func unwrapDetail(err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) {
		if pe.Err != nil {
			return fmt.Errorf("%s: %w", pe.Detail, pe.Err)
		}
		return errors.New(pe.Detail)
	}
	return err
}

// Open is the providers.Factory for the file scheme.
func Open(_ context.Context, env providers.Env) (providers.Provider, error) {
	var cfg Config
	if err := mapstructure.Decode(env.Config, &cfg); err != nil {
		return nil, fmt.Errorf("providers.file: %v", err)
	}
	return New(cfg, env.User, env.ConfigDir)
}
