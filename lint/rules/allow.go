package rules

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"regexp"
	"strings"
	"sync"
)

// publishedExamples are values printed in vendors' own documentation. They
// are compared exactly (after trimming quotes), so a real key that merely
// contains "EXAMPLE" is still reported.
var publishedExamples = map[string]bool{
	"AKIAIOSFODNN7EXAMPLE":                     true,
	"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY": true,
	"AKIAI44QH8DHBEXAMPLE":                     true,
	"je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY": true,
	// RFC 6749 (OAuth 2.0) examples: client credentials, tokens.
	"czZCaGRSa3F0MzpnWDFmQmF0M2JW": true,
	"2YotnFZFEjr1zCsicMWpAA":       true,
	"tGzv3JOkF0XG5Qx2TlKWIA":       true,
	// RFC 7617 / RFC 2617 Basic auth examples (Aladdin).
	"QWxhZGRpbjpvcGVuIHNlc2FtZQ==": true,
	"QWxhZGRpbjpvcGVuIHNlc2FtZQ":   true,
	"YWxhZGRpbjpvcGVuc2VzYW1l":     true,
	// PyJWT's documented example ({"some": "payload"}, key "secret").
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzb21lIjoicGF5bG9hZCJ9.4twFt5NiznN84AWoo1d7KO1T_yoc0Z6XOpOVswacPZg": true,
	// jwt.io's sample token (HS256, "John Doe").
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c":                  true,
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiYWRtaW4iOnRydWUsImlhdCI6MTUxNjIzOTAyMn0.KMUFsIDTnFmyG3nMiGM6H9FNFUROf3wh7SmqJp-QV30": true,
}

// IsPublishedExample reports whether v is a documented example credential.
func IsPublishedExample(v []byte) bool {
	return publishedExamples[string(bytes.Trim(v, `"' `))]
}

// ContainsPublishedExample reports whether a published example is embedded
// in v: in a binary the next string runs straight on from it ("…c5cX"), so
// an exact match misses it.
func ContainsPublishedExample(v []byte) bool {
	for ex := range publishedExamples {
		if len(ex) >= 20 && len(v) > len(ex) && bytes.Contains(v, []byte(ex)) {
			return true
		}
	}
	return false
}

var placeholderWords = []string{
	"changeme", "change_me", "change-me", "changeit", "placeholder", "example",
	"your_", "your-", "yourtoken", "yourkey", "yoursecret", "xxxx", "****", "....",
	"dummy", "redacted", "replace_me", "replaceme", "notasecret", "not-a-secret",
	"insert_", "todo", "fixme", "<", ">", "${", "{{", "$(", "%(", "process.env",
	"os.environ", "getenv", "secretkeyref", "valuefrom", "proxypass", "repopwd",
}

var (
	placeholderOnce sync.Once
	placeholderRe   *regexp.Regexp
)

// IsPlaceholder reports whether v is a stand-in rather than a value:
// "changeme", "${VAR}", "<your-token>", "xxxx", "$VAR", a run of one
// character, and the like.
func IsPlaceholder(v []byte) bool {
	placeholderOnce.Do(func() {
		placeholderRe = regexp.MustCompile(`^(\$[A-Za-z_][A-Za-z0-9_]*|%[A-Za-z_]+%|[A-Za-z_]+\(\)|true|false|null|none|nil|undefined|password|secret|token)$`)
	})
	t := bytes.Trim(v, `"'`+"` ,;")
	if len(t) == 0 {
		return true
	}
	l := strings.ToLower(string(t))
	for _, w := range placeholderWords {
		if strings.Contains(l, w) {
			return true
		}
	}
	if placeholderRe.MatchString(l) {
		return true
	}
	// One repeated character ("aaaaaaaa", "00000000").
	return bytes.Count(t, t[:1]) == len(t)
}

// publicValues lists the SHA-256 (see ValueHash) of credentials published in
// widely shipped software, so that a stock base image is clean: GnuTLS's
// self-test keys inside libgnutls, the Go toolchain's and golang.org/x test
// keys, Google Cloud SDK's public API keys and test fixtures. Hashes, not
// values, so the file holds nothing secret-looking. Regenerate with
// lint/internal/publicvalues.
//
//go:embed public_values.txt
var publicValuesTxt string

var publicValues = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(publicValuesTxt))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			m[f[0]] = true
		}
	}
	return m
})

// ValueHash identifies a value for the public-values list: the SHA-256 of a
// PEM block's decoded body (so line breaks and headers do not matter), else
// of the value itself.
func ValueHash(v []byte) string {
	if blk, _ := pem.Decode(v); blk != nil {
		v = blk.Bytes
	} else if bytes.Contains(v, []byte(`\n`)) {
		if blk, _ := pem.Decode(bytes.ReplaceAll(v, []byte(`\n`), []byte("\n"))); blk != nil {
			v = blk.Bytes
		}
	}
	h := sha256.Sum256(v)
	return hex.EncodeToString(h[:])
}

// IsPublicValue reports whether v was published in widely shipped software.
func IsPublicValue(v []byte) bool {
	return publicValues()[ValueHash(v)]
}
