package rules_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/secretbroker/secretbroker/lint/internal/testsecret"
	"github.com/secretbroker/secretbroker/lint/rules"
)

// wrap breaks s into lines of n characters, each after indent.
func wrap(s string, n int, indent string) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(indent + s[:n] + "\n")
		s = s[n:]
	}
	b.WriteString(indent + s + "\n")
	return b.String()
}

func utf16Bytes(s string, bigEndian, bom bool) []byte {
	var out []byte
	u := utf16.Encode([]rune(s))
	if bom {
		u = append([]uint16{0xfeff}, u...)
	}
	for _, c := range u {
		if bigEndian {
			out = append(out, byte(c>>8), byte(c))
		} else {
			out = append(out, byte(c), byte(c>>8))
		}
	}
	return out
}

// Keys and tokens stored encoded are found, wherever the encoding puts
// them, and the finding says which encoding and where. Every value is
// generated here; none is committed.
func TestEncodedSecrets(t *testing.T) {
	e := engine(t)
	rsa, ec, ssh := testsecret.RSAKeyPEM(), testsecret.ECKeyPEM(), testsecret.OpenSSHKeyPEM(false)
	pat := testsecret.GitHubPAT()
	b64 := base64.StdEncoding.EncodeToString
	url := base64.URLEncoding.EncodeToString
	cases := []struct {
		name, file string
		content    []byte
		rule, note string
	}{
		{"k8s secret data", "deploy/secret.yaml", []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: tls\ntype: kubernetes.io/tls\ndata:\n  tls.crt: \"\"\n  tls.key: " + b64([]byte(rsa)) + "\n"),
			"private-key-rsa", "base64 at line 8"},
		{"base64 wrapped at 76", "etc/app/key.b64", []byte("# key\n\n" + wrap(b64([]byte(ec)), 76, "")),
			"private-key-pkcs8", "base64 at line 3"},
		{"yaml block scalar", "values.yaml", []byte("ssh:\n  key: |\n" + wrap(b64([]byte(ssh)), 64, "    ")),
			"private-key-openssh", "base64 at line 3"},
		{"url alphabet", "app.json", []byte(`{"k": "` + strings.TrimRight(url([]byte(ec)), "=") + `"}`),
			"private-key-pkcs8", "base64 at line 1"},
		{"token inside an encoded .env, offset 1", "cfg", []byte("x: " + b64([]byte("A\nGITHUB="+pat+"\n")) + "\n"),
			"github-pat", "base64 at line 1"},
		{"token inside an encoded .env, offset 2", "cfg", []byte("x: " + b64([]byte("AB\nGITHUB="+pat+"\n")) + "\n"),
			"github-pat", "base64 at line 1"},
		{"token, offset 0", "cfg", []byte("line\nline\nGH=" + b64([]byte(pat)) + "\n"),
			"github-pat", "base64 at line 3"},
		{"hex lower", "key.hex", []byte("\n" + hex.EncodeToString([]byte(rsa))),
			"private-key-rsa", "hex at line 2"},
		{"hex upper, wrapped", "key.hex", []byte(wrap(strings.ToUpper(hex.EncodeToString([]byte(ec))), 64, "")),
			"private-key-pkcs8", "hex at line 1"},
		{"utf-16le with bom", "key.txt", utf16Bytes(rsa, false, true), "private-key-rsa", "UTF-16 at line 1"},
		{"utf-16be", "key.txt", utf16Bytes(ec, true, false), "private-key-pkcs8", "UTF-16 at line 1"},
		{"utf-16le token in a binary", "app.exe", append(append([]byte("MZ\x00\x01\x02"), utf16Bytes("token="+pat, false, false)...), 0, 0, 0xff),
			"github-pat", "UTF-16 at line 1"},
		{"base64 of base64", "cfg", []byte("v: " + b64([]byte("inner: "+b64([]byte(ec)))) + "\n"),
			"private-key-pkcs8", "base64 at line 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ms := e.NewScanner().ScanBytes(c.content, c.file)
			for _, m := range ms {
				if m.Rule.ID == c.rule {
					if !strings.Contains(m.Note, c.note) {
						t.Fatalf("note %q, want %q", m.Note, c.note)
					}
					return
				}
			}
			t.Fatalf("no %s finding; got %v", c.rule, ids(ms))
		})
	}
}

// Encoded public material (a certificate, a public key) and random base64
// are decoded but are no finding; a block is decoded once, not once per hit.
func TestEncodedNoFalseAlarm(t *testing.T) {
	e := engine(t)
	cert := "-----BEGIN CERTIFICATE-----\n" + wrap(testsecret.Alnum(600), 64, "") + "-----END CERTIFICATE-----\n"
	var buf bytes.Buffer
	buf.WriteString("ca.crt: " + base64.StdEncoding.EncodeToString([]byte(cert)) + "\n")
	buf.WriteString("blob: " + base64.StdEncoding.EncodeToString([]byte(testsecret.Alnum(200000))) + "\n")
	if ms := e.NewScanner().ScanBytes(buf.Bytes(), "cfg.yaml"); len(ms) != 0 {
		t.Fatalf("findings %v", ids(ms))
	}
}

// Decoding is bounded in depth: three encodings deep is not read.
func TestEncodedDepth(t *testing.T) {
	e := engine(t)
	ec := testsecret.ECKeyPEM()
	v := []byte(ec)
	for range 3 {
		v = []byte("v: " + base64.StdEncoding.EncodeToString(v) + "\n")
	}
	if ms := e.NewScanner().ScanBytes(v, "cfg"); len(ms) != 0 {
		t.Fatalf("findings %v at depth 3", ids(ms))
	}
}

// BenchmarkScanBase64Dense is the worst case for decoding: base64 data
// (an image inlined in a source map) in which encoded anchors hit by chance.
func BenchmarkScanBase64Dense(b *testing.B) {
	e := engine(b)
	data := []byte(wrap(base64.StdEncoding.EncodeToString([]byte(testsecret.Random("\x00\x01\x02\x03abcdefghij\xff\xfe", 6<<20))), 76, ""))
	sc := e.NewScanner()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = sc.Scan(bytes.NewReader(data), "app.js.map", func(rules.Match) {})
	}
}
