package vaulttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestInject runs the inject binary end to end against a real Vault:
// testdata/*.txtar, with the binary built from this repository's
// cmd/inject. Each script gets:
//
//	VAULT_ADDR, VAULT_CACERT   the cluster
//	SHM                        a directory on /dev/shm (tmpfs)
//
// (tokens and test values stay out of the environment, which testscript
// prints) and the commands `vaulttoken root|app` (sets VAULT_TOKEN to a root
// token or one with exactly the app-read policy), `approlefiles` (writes
// role-id and a fresh single-use secret-id), `shows FILE db_pw|kv1` (FILE
// holds that test value), `vaultreqs reset`, `vaultreqs PATTERN N` (Vault served N,
// or with ">=N" at least N, requests whose "METHOD /v1/path" starts with PATTERN), `vaulttokens save`
// and `vaulttokens same` (no token was left alive since save), and `noleak`
// (stdout and stderr hold no test value).
func TestInject(t *testing.T) {
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "inject"), "./cmd/inject")
	build.Dir = "../../.."
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("building inject: %v", err)
	}
	c := seeded(t)
	app := c.Token(t, "default", "app-read")
	roleID, _ := approleSetup(t, c)
	seedBench(t, c, 50)
	c.Policy(t, "bench-read", `path "secret/data/bench/*" { capabilities = ["read"] }
path "kv1/bench/*" { capabilities = ["read"] }`)
	c.Write(t, "leased/short", map[string]any{"v": "short-lived", "ttl": "3s"})
	c.Write(t, "auth/approle/role/app", map[string]any{"token_policies": []string{"app-read", "bench-read"}, "token_ttl": "10m", "secret_id_num_uses": 1})
	tokens := 0
	var serial sync.Mutex
	var secretIDs []string

	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(e *testscript.Env) error {
			// Scripts share the cluster and its request counter: one at a time.
			serial.Lock()
			e.Defer(serial.Unlock)
			shm, err := os.MkdirTemp("/dev/shm", "inject-vault")
			if err != nil {
				return err
			}
			e.Defer(func() { os.RemoveAll(shm) })
			for k, v := range map[string]string{
				"PATH":       bin + string(os.PathListSeparator) + os.Getenv("PATH"),
				"VAULT_ADDR": c.Addr, "VAULT_CACERT": c.CAFile,
				"SHM": shm, "HOME": e.WorkDir,
			} {
				e.Setenv(k, v)
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"vaulttoken": func(ts *testscript.TestScript, neg bool, args []string) {
				switch args[0] {
				case "root":
					ts.Setenv("VAULT_TOKEN", c.RootToken)
				case "app":
					ts.Setenv("VAULT_TOKEN", app)
				default:
					ts.Fatalf("usage: vaulttoken root|app")
				}
			},
			"approlefiles": func(ts *testscript.TestScript, neg bool, args []string) {
				_, sid := approleSetup(t, c)
				ts.Check(os.WriteFile(ts.MkAbs("role-id"), []byte(roleID), 0o600))
				ts.Check(os.WriteFile(ts.MkAbs("secret-id"), []byte(sid), 0o600))
				secretIDs = append(secretIDs, sid)
			},
			"shows": func(ts *testscript.TestScript, neg bool, args []string) {
				values := map[string]string{"db_pw": dbPassword2, "kv1": kv1Token}
				if len(args) != 2 || values[args[1]] == "" {
					ts.Fatalf("usage: shows FILE db_pw|kv1")
				}
				if strings.Contains(ts.ReadFile(args[0]), values[args[1]]) == neg {
					ts.Fatalf("%s: want it to show %s: %v", args[0], args[1], !neg)
				}
			},
			"vaultreqs": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) == 1 && args[0] == "reset" {
					c.Requests.Reset()
					return
				}
				if len(args) != 2 {
					ts.Fatalf("usage: vaultreqs reset | vaultreqs PATTERN N")
				}
				atLeast := strings.HasPrefix(args[1], ">=")
				want, err := strconv.Atoi(strings.TrimPrefix(args[1], ">="))
				ts.Check(err)
				got := 0
				for _, r := range c.Requests.Seen() {
					if strings.HasPrefix(r, args[0]) {
						got++
					}
				}
				if ok := got == want || (atLeast && got > want); ok == neg {
					ts.Fatalf("requests %q: %d, want %d; all:\n%s", args[0], got, want, c.Requests.Summary())
				}
			},
			"vaulttokens": func(ts *testscript.TestScript, neg bool, args []string) {
				s, err := c.Root.Logical().List("auth/token/accessors")
				ts.Check(err)
				n := len(s.Data["keys"].([]any))
				switch args[0] {
				case "save":
					tokens = n
				case "same":
					if (n == tokens) == neg {
						ts.Fatalf("live tokens: %d, before: %d", n, tokens)
					}
				}
			},
			"noleak": func(ts *testscript.TestScript, neg bool, args []string) {
				files := []string{"stdout", "stderr"}
				if len(args) > 0 {
					files = args
				}
				for _, f := range files {
					out := ts.ReadFile(f)
					for _, v := range append([]string{dbPassword1, dbPassword2, kv1Token, c.RootToken, app}, secretIDs...) {
						if strings.Contains(out, v) {
							ts.Fatalf("%s shows a secret value or token", f)
						}
					}
				}
			},
		},
	})
}
