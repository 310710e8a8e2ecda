//go:build !noawssm

package main

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/secretbroker/secretbroker/internal/testenv/awsfake"
)

// The awssm_*.txtar scripts run against awsfake, a Secrets Manager that
// checks every request's SigV4 signature. Setup seeds it and exports:
//
//	AWS_* (credentials, region, AWS_ENDPOINT_URL_SECRETS_MANAGER)
//	FAKE_DB_PW, FAKE_API_TOKEN, FAKE_OLD_TOKEN  the generated test values
//	DB_ARN                                       prod/db's ARN
//	FAKE_EAST_PW                                 the password of another
//	                                             prod/db, in us-east-1
//
// and the command `awsfake deny ACTION [SECRET...]`, `awsfake restrict ACTION
// SECRET...` (allowed on those only) or `awsfake calls ACTION N` changes or
// checks the server.
func init() {
	scriptSetups["awssm_"] = func(env *testscript.Env) error {
		s := awsfake.New("eu-west-1")
		env.Defer(s.Close)
		env.Values["awsfake"] = s
		for k, v := range s.Env() {
			env.Setenv(k, v)
		}
		pw, tok, old := fakeScriptValue("pw"), fakeScriptValue("tok"), fakeScriptValue("old")
		env.Setenv("DB_ARN", s.CreateString("prod/db", `{"user":"app","password":"`+pw+`"}`))
		east := fakeScriptValue("east")
		s.CreateStringIn("us-east-1", awsfake.Account, "prod/db", `{"user":"app","password":"`+east+`"}`)
		env.Setenv("FAKE_EAST_PW", east)
		s.CreateString("api-token", old)
		s.PutString("api-token", tok)
		s.CreateBinary("tls/blob", []byte{0, 1, 2, 3})
		s.CreateString("locked", "locked-s3cr3t")
		s.Deny("GetSecretValue", "locked")
		env.Setenv("FAKE_DB_PW", pw)
		env.Setenv("FAKE_API_TOKEN", tok)
		env.Setenv("FAKE_OLD_TOKEN", old)
		return nil
	}
	scriptCmds["awsfake"] = func(ts *testscript.TestScript, neg bool, args []string) {
		s, _ := ts.Value("awsfake").(*awsfake.Server)
		if s == nil {
			ts.Fatalf("awsfake: only in awssm_* scripts")
		}
		if len(args) < 2 {
			ts.Fatalf("usage: awsfake deny ACTION [SECRET...] | awsfake restrict ACTION SECRET... | awsfake calls ACTION N")
		}
		switch args[0] {
		case "deny":
			s.Deny(args[1], args[2:]...)
		case "restrict":
			s.Restrict(args[1], args[2:]...)
		case "calls":
			want, err := strconv.Atoi(args[2])
			ts.Check(err)
			if got := s.Calls(args[1]); (got == want) == neg {
				ts.Fatalf("%s calls: %d, want %d", args[1], got, want)
			}
		default:
			ts.Fatalf("awsfake: unknown subcommand %q", args[0])
		}
	}
}

func fakeScriptValue(label string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return label + "-s3cr3t-" + hex.EncodeToString(b) // s3cr3t: what `noleak` looks for
}
