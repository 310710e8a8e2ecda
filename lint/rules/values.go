package rules

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
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

// IsMessageCatalogue reports whether name is a localized message bundle
// (LocalStrings_ja.properties, messages_pt_BR.properties): its values are
// translations, never credentials.
func IsMessageCatalogue(name string) bool {
	b := name[strings.LastIndexAny(name, "/!")+1:]
	if !strings.HasSuffix(b, ".properties") {
		return false
	}
	return catalogueRE().MatchString(b)
}

var catalogueRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`_[a-z]{2,3}(?:_[A-Z]{2})?(?:_[A-Za-z0-9]+)?\.properties$`)
})

// isAPIDoc reports whether a YAML/JSON file is an OpenAPI/Swagger document.
func isAPIDoc(name string, head []byte) bool {
	n := strings.ToLower(name)
	if !strings.HasSuffix(n, ".yaml") && !strings.HasSuffix(n, ".yml") && !strings.HasSuffix(n, ".json") {
		return false
	}
	return bytes.Contains(head, []byte("openapi")) || bytes.Contains(head, []byte("swagger"))
}

// underExample reports whether the value at buf[a] sits under an example
// key: on its line, or in the lines just above with less indentation
// (YAML), or in an enclosing "example(s)" object (JSON, within 1 KiB).
func underExample(buf []byte, a int) bool {
	lo := max(0, a-1024)
	ls := bytes.LastIndexByte(buf[lo:a], '\n') + 1 + lo
	line := buf[ls:a]
	if bytes.Contains(line, []byte("example")) {
		return true
	}
	ind := len(line) - len(bytes.TrimLeft(line, " \t"))
	for end := ls - 1; end > lo; {
		st := bytes.LastIndexByte(buf[lo:end], '\n') + 1 + lo
		l := buf[st:end]
		t := bytes.TrimLeft(l, " \t-")
		li := len(l) - len(bytes.TrimLeft(l, " \t"))
		if len(bytes.TrimSpace(l)) > 0 && li < ind {
			k := bytes.Trim(bytes.TrimSpace(t), `"`)
			if bytes.HasPrefix(k, []byte("example")) || bytes.HasPrefix(k, []byte(`examples`)) {
				return true
			}
			if bytes.HasPrefix(t, []byte(`"example`)) {
				return true
			}
			ind = li
			if li == 0 {
				return false
			}
		}
		end = st - 1
	}
	return false
}

// decodeUnicodeEscapes decodes \uXXXX escapes (Java .properties, JSON);
// ok is false when v holds none.
func decodeUnicodeEscapes(v []byte) ([]byte, bool) {
	if !bytes.Contains(v, []byte(`\u`)) {
		return nil, false
	}
	var out []byte
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+6 <= len(v) && v[i+1] == 'u' {
			var r rune
			ok := true
			for _, c := range v[i+2 : i+6] {
				switch {
				case c >= '0' && c <= '9':
					r = r<<4 | rune(c-'0')
				case c >= 'a' && c <= 'f':
					r = r<<4 | rune(c-'a'+10)
				case c >= 'A' && c <= 'F':
					r = r<<4 | rune(c-'A'+10)
				default:
					ok = false
				}
			}
			if ok {
				out = utf8.AppendRune(out, r)
				i += 5
				n++
				continue
			}
		}
		out = append(out, v[i])
	}
	return out, n > 0
}

// naturalLanguage reports whether decoded text is mostly letters outside
// ASCII (a translated message).
func naturalLanguage(d []byte) bool {
	letters, total := 0, 0
	for _, r := range string(d) {
		total++
		if r > 127 && unicode.IsLetter(r) {
			letters++
		}
	}
	return total > 0 && letters*2 >= total
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "; " + b
}
