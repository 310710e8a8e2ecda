package rules

import (
	"bytes"
	"fmt"
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
func IsPlaceholder(v []byte) bool { return PlaceholderReason(v) != "" }

// PlaceholderReason says why v is a stand-in ("" when it is not), naming
// the stand-in word and where it is but never the value, so a test that
// finds a generated token judged a placeholder can say why.
func PlaceholderReason(v []byte) string {
	placeholderOnce.Do(func() {
		placeholderRe = regexp.MustCompile(`^(\$[A-Za-z_][A-Za-z0-9_]*|%[A-Za-z_]+%|[A-Za-z_]+\(\)|true|false|null|none|nil|undefined|password|secret|token)$`)
	})
	t := bytes.Trim(v, `"'`+"` ,;")
	if len(t) == 0 {
		return "empty"
	}
	l := strings.ToLower(string(t))
	for _, w := range placeholderWords {
		if i := placeholderWordAt(string(t), l, w); i >= 0 {
			return fmt.Sprintf("stand-in %q at byte %d of %d", w, i, len(t))
		}
	}
	if placeholderRe.MatchString(l) {
		return "a variable, keyword or bare name"
	}
	// One repeated character ("aaaaaaaa", "00000000").
	if bytes.Count(t, t[:1]) == len(t) {
		return "one repeated character"
	}
	return ""
}

// placeholderWordAt returns where the placeholder word w (lower case)
// stands as a word in t (l is t lower-cased), or -1. A word spelled with a
// non-alphanumeric character ("your_", "${", "****") always does. A word
// of letters only ("todo", "xxxx", "example") must start or end at the
// value's edge, next to a non-alphanumeric character, or at a camelCase
// boundary ("myExampleKey"): buried in a random run it is chance, not a
// stand-in. A random 90-character token holds "todo" or "xxxx" somewhere
// about once in 5,000 draws, and such a live token was reported as a
// placeholder (the TestDetect/vault flake).
func placeholderWordAt(t, l, w string) int {
	if !isAlnumWord(w) {
		return strings.Index(l, w)
	}
	for from := 0; ; {
		i := strings.Index(l[from:], w)
		if i < 0 {
			return -1
		}
		i += from
		j := i + len(w)
		if i == 0 || j == len(t) || !isAlnum(t[i-1]) || !isAlnum(t[j]) {
			return i
		}
		// camelCase: "myExampleKey", "useDUMMYValue", "dummyToken".
		if w != "xxxx" && (isLower(t[i-1]) && isUpper(t[i]) && sameCase(t[i+1:j]) || isUpper(t[j]) && isLower(t[j-1]) && sameCase(t[i+1:j])) {
			return i
		}
		from = i + 1
	}
}

func isAlnumWord(w string) bool {
	for i := 0; i < len(w); i++ {
		if !isAlnum(w[i]) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool { return c >= '0' && c <= '9' || isLower(c) || isUpper(c) }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

// sameCase reports whether s is all lower or all upper case letters.
func sameCase(s string) bool {
	lo, up := true, true
	for i := 0; i < len(s); i++ {
		lo = lo && !isUpper(s[i])
		up = up && !isLower(s[i])
	}
	return lo || up
}
