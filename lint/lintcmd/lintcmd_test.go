package lintcmd_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spf13/cobra"

	"github.com/secretbroker/secretbroker/lint/internal/testimage"
	"github.com/secretbroker/secretbroker/lint/internal/testsecret"
	"github.com/secretbroker/secretbroker/lint/lintcmd"
)

// root mimics the main CLI: a root command with lint added in one line and
// *ExitError mapped to the exit code.
func root() int {
	r := &cobra.Command{Use: "inject", SilenceErrors: true, SilenceUsage: true}
	r.AddCommand(lintcmd.Command())
	lintcmd.KnownSecretsLoader = func(_ context.Context, spec string) ([]lintcmd.KnownSecret, error) {
		// The test loader reads NAME=VALUE lines; the real one resolves an
		// inject spec through the providers.
		data, err := os.ReadFile(spec)
		if err != nil {
			return nil, err
		}
		var out []lintcmd.KnownSecret
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			n, v, _ := strings.Cut(l, "=")
			out = append(out, lintcmd.KnownSecret{Name: n, Value: []byte(v)})
		}
		return out, nil
	}
	err := r.Execute()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return lintcmd.ExitCode(err)
}

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"inject": func() { os.Exit(root()) }})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			return setup(env.WorkDir, env)
		},
	})
}

// setup generates the secrets and images the scripts use: nothing
// secret-looking is committed.
func setup(dir string, env *testscript.Env) error {
	pat, aws, slack := testsecret.GitHubPAT(), testsecret.AWSKeyID(), testsecret.Slack()
	vault, npm, key := testsecret.Vault(), testsecret.Alnum(36), testsecret.RSAKeyPEM()
	env.Setenv("PAT", pat)
	env.Setenv("PAT_PREFIX", pat[:4])
	write := func(name, body string) error {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, []byte(body), 0o644)
	}
	// A plain directory with planted secrets and traps.
	files := map[string]string{
		"tree/app/config.js":             "const token = '" + pat + "';\n",
		"tree/home/.npmrc":               "//registry.npmjs.org/:_authToken=" + npm + "\n",
		"tree/docs/aws.md":               "Example: AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n",
		"tree/docs/env.md":               "password: ${DB_PASSWORD}\napi_key = \"<your-api-key>\"\n",
		"clean/readme.txt":               "nothing to see here\n",
		"fixture/src/testdata/creds.txt": "token=" + pat + "\n",
		"skipped/opt/vendor/blob.zip":    "PK\x03\x04" + strings.Repeat("\x00", 64),
		"jwt/session.txt":                "session " + testsecret.JWT() + "\n",
		"repo/app.txt":                   "token=" + pat + "\n",
		"gitrepo/secret.txt":             "token=" + testsecret.Vault() + "\n",
		"known/spec.txt":                 "db_password=" + "correct/horse-battery-" + testsecret.Alnum(4) + "\n",
		"dockerctx/Dockerfile":           "FROM scratch\nARG NPM_TOKEN\nENV API_TOKEN=" + testsecret.Alnum(24) + "\nCOPY . /app\nRUN curl -u admin:" + testsecret.Alnum(12) + " https://example.net/\n",
		"dockerctx/.dockerignore":        "ignored/\n",
		"dockerctx/id_rsa":               key,
		"dockerctx/ignored/k.pem":        key,
		"dockerctx/src/main.go":          "package main\n",
		"baddocker/Dockerfile":           "FROM scratch\nCOPY <<EOF\n",
	}
	for n, b := range files {
		if err := write(n, b); err != nil {
			return err
		}
	}
	spec, _ := os.ReadFile(filepath.Join(dir, "known/spec.txt"))
	_, val, _ := strings.Cut(strings.TrimSpace(string(spec)), "=")
	if err := write("known/tree/app.env.b64", "blob: "+b64(val)+"\n"); err != nil {
		return err
	}
	if err := write("known/hex/dump.txt", "0000: "+hex.EncodeToString([]byte(val))+"\n"); err != nil {
		return err
	}
	if err := write("known/url/log.txt", "GET /login?pw="+url.QueryEscape(val + "&x")[:len(url.QueryEscape(val))]+" 200\n"); err != nil {
		return err
	}

	// A three-layer image: a key deleted by a whiteout, a token overwritten,
	// a token in the final filesystem, secrets in Env and build-arg history.
	img := testimage.Image(v1.Config{
		Env:    []string{"PATH=/usr/bin", "SLACK_TOKEN=" + slack},
		Labels: map[string]string{"maintainer": "team"},
		Cmd:    []string{"/app"},
	},
		[]testimage.File{{Name: "root/.ssh/id_rsa", Body: key}, {Name: "etc/app.conf", Body: "token = " + vault + "\n"}},
		[]testimage.File{{Name: "root/.ssh/id_rsa", Whiteout: true}, {Name: "etc/app.conf", Body: "token = none\n"}},
		[]testimage.File{{Name: "srv/aws.txt", Body: "AWS_ACCESS_KEY_ID=" + aws + "\n"}},
	)
	img = testimage.WithHistory(img, "|1 NPM_TOKEN="+testsecret.NPM()+" /bin/sh -c npm ci")
	if err := testimage.DockerArchive(filepath.Join(dir, "image.tar"), img); err != nil {
		return err
	}
	if err := testimage.OCILayout(filepath.Join(dir, "layout"), img); err != nil {
		return err
	}
	if err := testimage.OCIArchive(filepath.Join(dir, "image-oci.tar"), img); err != nil {
		return err
	}
	clean := testimage.Image(v1.Config{Env: []string{"PATH=/usr/bin"}}, []testimage.File{{Name: "bin/app", Body: "ELF..."}})
	if err := testimage.DockerArchive(filepath.Join(dir, "clean.tar"), clean); err != nil {
		return err
	}
	if err := gzipFile(filepath.Join(dir, "image.tar"), filepath.Join(dir, "image.tar.gz")); err != nil {
		return err
	}
	return corrupt(filepath.Join(dir, "image.tar"), filepath.Join(dir, "corrupt.tar"))
}

// gzipFile writes `gzip <src >dst`.
func gzipFile(src, dst string) error {
	in, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	if _, err := zw.Write(in); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return out.Close()
}

// corrupt copies a docker-archive, cutting its second layer blob short.
func corrupt(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	layers := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		if strings.HasSuffix(hdr.Name, ".tar.gz") {
			if layers++; layers == 2 {
				body = body[:len(body)/2]
				hdr.Size = int64(len(body))
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(body); err != nil {
			return err
		}
	}
	return tw.Close()
}
