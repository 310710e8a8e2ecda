package rules

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
)

// NotAValue reports why the value at buf[a:b], which a ByName rule found by
// the name before it, is no secret value, or "" when it may be one. The
// value is judged as a value: an empty one (the assignment ends its line),
// a file path (DB_PASSWORD_FILE=/run/secrets/db), a URL without
// credentials, a reference to a secret store (vault://, aws-sm://, op://,
// an ARN). And the name is judged: one that ends in ID, _id, Name, Path or
// File after secret/token/password names a reference, not a value.
func NotAValue(buf []byte, a, b int) string {
	// Walk back over quotes, blanks and the assignment to the name.
	i := a
	for i > 0 {
		c := buf[i-1]
		if c == '\n' || c == '\r' {
			return "empty value"
		}
		if c == '"' || c == '\'' || c == ' ' || c == '\t' || c == ':' || c == '=' || c == '>' {
			i--
			continue
		}
		break
	}
	j := i
	for j > 0 && isNameByte(buf[j-1]) {
		j--
	}
	if refName(string(buf[j:i])) {
		return "the name refers to a secret"
	}
	return JudgeValue(buf[a:b])
}

// JudgeValue reports why v is no secret value (a path, a URL without
// credentials, a secret-store reference), or "".
func JudgeValue(v []byte) string {
	t := string(bytes.Trim(v, "\"'` ,;"))
	switch {
	case t == "":
		return "empty value"
	case isReference(t):
		return "a reference to a secret store"
	case isURLWithoutCredentials(t):
		return "a URL without credentials"
	case isPath(t):
		return "a file path"
	}
	return ""
}

func isNameByte(c byte) bool {
	return c == '_' || c == '-' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

var refSuffixes = []string{"_id", "-id", ".id", "_name", "-name", ".name", "_path", "-path", ".path", "_file", "-file", ".file", "_ref", "_arn"}

// refName reports whether a secret-ish name ends in a word that makes it a
// reference: DB_PASSWORD_FILE, secret_id, tokenPath, secretName.
func refName(n string) bool {
	if n == "" {
		return false
	}
	l := strings.ToLower(n)
	for _, s := range refSuffixes {
		if strings.HasSuffix(l, s) {
			return true
		}
	}
	// camelCase: secretID, secretId, tokenName, passwordPath, keyFile.
	for _, s := range []string{"ID", "Id", "Name", "Path", "File", "Ref", "Arn"} {
		if strings.HasSuffix(n, s) && len(n) > len(s) {
			c := n[len(n)-len(s)-1]
			if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
				return true
			}
		}
	}
	return false
}

var (
	valueREs = sync.OnceValue(func() [3]*regexp.Regexp {
		return [3]*regexp.Regexp{
			// secret-store references
			regexp.MustCompile(`^(?:(?:vault|aws-sm|awssm|op|gcp-sm|gcpsm|azure-kv|akv|secretsmanager|ssm|file|env)://\S+|arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d*:\S+)$`),
			// scheme://host/path without user:password@
			regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://[^@/\s]*(?:[/?#]\S*)?$`),
			// /run/secrets/db, ./conf/x.pem, ~/.ssh/id_rsa: the first
			// segment a lower-case word, no base64 padding or plus.
			regexp.MustCompile(`^(?:/|\./|\.\./|~/)[a-z][a-z0-9._-]*(?:/[A-Za-z0-9._@-]+)*/?$`),
		}
	})
)

func isReference(t string) bool { return valueREs()[0].MatchString(t) }

func isURLWithoutCredentials(t string) bool {
	if !valueREs()[1].MatchString(t) {
		return false
	}
	// userinfo anywhere before the path is credentials.
	rest := t[strings.Index(t, "://")+3:]
	if k := strings.IndexAny(rest, "/?#"); k >= 0 {
		rest = rest[:k]
	}
	return !strings.Contains(rest, "@")
}

func isPath(t string) bool {
	if !valueREs()[2].MatchString(t) {
		return false
	}
	// A single segment after "/" must look like a word, not a random
	// string that happens to start with a slash.
	segs := strings.Split(strings.Trim(t, "/.~"), "/")
	return len(segs) >= 2 || strings.HasPrefix(t, "./") || strings.HasPrefix(t, "~/") || strings.HasPrefix(t, "../")
}
