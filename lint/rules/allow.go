package rules

import (
	"bytes"
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
