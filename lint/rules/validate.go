package rules

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"hash/crc32"
	"math"
	"math/big"
	"net/url"
	"regexp"
	"strings"
	"sync"
)

// A validator looks at a candidate value and says whether it is a real secret
// of its format. note adds what it learned ("encrypted", "plain").
type validator func(v []byte) (ok bool, note string)

var validators = map[string]validator{
	"github-checksum": githubChecksum,
	"private-key":     privateKey,
	"pgp-private-key": pgpPrivateKey,
	"jwt":             jwtToken,
	"generic":         generic,
	"jks-private-key": jksPrivateKey,
	"basic-auth":      basicAuth,
	"url-password":    urlPassword,
	"private-key-escaped": func(v []byte) (bool, string) {
		return privateKey(bytes.ReplaceAll(v, []byte(`\n`), []byte("\n")))
	},
	"gcp-service-account": func(v []byte) (bool, string) {
		return bytes.Contains(v, []byte("PRIVATE KEY")), ""
	},
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// A precheck looks at the bytes around a keyword hit, buf[start:end], and
// says whether the rule's regex is worth running.
type precheck func(buf []byte, start, end int) bool

var prechecks = map[string]precheck{
	// "://" is in every URL; only "scheme://user:pass@" can hold a
	// password: a ':' then an '@' before the path, a space or a quote.
	"userinfo": func(buf []byte, _, end int) bool {
		colon := false
		for _, c := range buf[end:min(len(buf), end+256)] {
			switch c {
			case ':':
				colon = true
			case '@':
				return colon
			case '/', ' ', '\t', '\n', '\r', '"', '\'', '<', '>':
				return false
			}
		}
		return false
	},
	// Airtable tokens: "pat", 14 characters, a dot ("path", "pattern" and
	// "patch" are not).
	"dot-after-14": func(buf []byte, _, end int) bool {
		return end+14 < len(buf) && buf[end+14] == '.'
	},
}

// Base62CRC32 is the 6-character checksum GitHub (and npm) append to their
// tokens: CRC32 of the random part, in base 62, left-padded with '0'.
func Base62CRC32(random []byte) string {
	c := crc32.ChecksumIEEE(random)
	out := []byte("000000")
	for i := 5; i >= 0 && c > 0; i-- {
		out[i] = base62[c%62]
		c /= 62
	}
	return string(out)
}

// githubChecksum checks ghp_/gho_/ghu_/ghs_/ghr_ and npm_ tokens: prefix,
// 30 random characters, 6 checksum characters. A token whose checksum does
// not match was not issued by GitHub (a made-up example in docs).
func githubChecksum(v []byte) (bool, string) {
	i := bytes.IndexByte(v, '_')
	if i < 0 || len(v)-i-1 != 36 {
		return false, ""
	}
	body := v[i+1:]
	return Base62CRC32(body[:30]) == string(body[30:]), "checksum valid"
}

// privateKey parses a PEM or OpenSSH private key block. Encrypted keys are
// still findings (a passphrase is often nearby) but say so.
func privateKey(v []byte) (bool, string) {
	blk, _ := pem.Decode(v)
	if blk == nil {
		return false, ""
	}
	if blk.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(blk.Headers["Proc-Type"], "ENCRYPTED") {
		return len(blk.Bytes) > 0, "encrypted"
	}
	switch blk.Type {
	case "OPENSSH PRIVATE KEY":
		return openSSHKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		_, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
		return err == nil, "plain"
	case "EC PRIVATE KEY":
		_, err := x509.ParseECPrivateKey(blk.Bytes)
		return err == nil, "plain"
	case "PRIVATE KEY":
		_, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		return err == nil, "plain"
	case "DSA PRIVATE KEY":
		var k struct {
			Version       int
			P, Q, G, Y, X *big.Int
		}
		_, err := asn1.Unmarshal(blk.Bytes, &k)
		return err == nil && k.X != nil && k.X.Sign() > 0, "plain"
	}
	// Other kinds (e.g. "PUTTY", vendor types): a DER body that decoded.
	return len(blk.Bytes) >= 32, "unparsed"
}

// openSSHKey checks the "openssh-key-v1" container (PROTOCOL.key in
// OpenSSH): the cipher says whether the key is encrypted; a plain key's two
// check integers must match. Parsing this much by hand keeps
// golang.org/x/crypto/ssh (and its start-up cost) out of the binary.
func openSSHKey(b []byte) (bool, string) {
	const magic = "openssh-key-v1\x00"
	if !bytes.HasPrefix(b, []byte(magic)) {
		return false, ""
	}
	b = b[len(magic):]
	str := func() ([]byte, bool) {
		if len(b) < 4 {
			return nil, false
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return nil, false
		}
		v := b[4 : 4+n]
		b = b[4+n:]
		return v, true
	}
	cipher, ok1 := str()
	_, ok2 := str() // kdf name
	_, ok3 := str() // kdf options
	if !ok1 || !ok2 || !ok3 || len(b) < 4 {
		return false, ""
	}
	nkeys := binary.BigEndian.Uint32(b)
	b = b[4:]
	if nkeys == 0 || nkeys > 16 {
		return false, ""
	}
	for i := uint32(0); i < nkeys; i++ {
		if _, ok := str(); !ok {
			return false, ""
		}
	}
	priv, ok := str()
	if !ok || len(priv) < 8 {
		return false, ""
	}
	if string(cipher) != "none" {
		return true, "encrypted"
	}
	return binary.BigEndian.Uint32(priv) == binary.BigEndian.Uint32(priv[4:]), "plain"
}

// pgpPrivateKey checks that the armored block decodes and starts with a
// secret-key packet (tag 5); the S2K usage octet tells whether it is encrypted.
func pgpPrivateKey(v []byte) (bool, string) {
	lines := strings.Split(string(v), "\n")
	var b64 strings.Builder
	body := false
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "-----END"), strings.HasPrefix(l, "="):
			goto done
		case !body && (l == "" || strings.Contains(l, ": ")):
			if l == "" {
				body = true
			}
			continue
		}
		body = true
		b64.WriteString(l)
	}
done:
	raw, err := base64.StdEncoding.DecodeString(b64.String())
	if err != nil || len(raw) < 8 {
		return false, ""
	}
	tag := raw[0]
	var hdr int
	switch {
	case tag&0xC0 == 0xC0: // new format
		if tag&0x3F != 5 {
			return false, ""
		}
		switch l := raw[1]; {
		case l < 192:
			hdr = 2
		case l < 224:
			hdr = 3
		default:
			hdr = 6
		}
	case tag&0x80 == 0x80: // old format
		if (tag>>2)&0x0F != 5 {
			return false, ""
		}
		hdr = 1 + [4]int{1, 2, 4, 0}[tag&3]
	default:
		return false, ""
	}
	// version(1) time(4) algo(1) then public key material; the S2K octet
	// follows the MPIs, which we do not walk: report what we know.
	if len(raw) < hdr+6 {
		return false, ""
	}
	return true, ""
}

// jwtToken parses header and payload as base64url JSON; the header must name
// an algorithm.
func jwtToken(v []byte) (bool, string) {
	parts := bytes.Split(v, []byte("."))
	if len(parts) != 3 {
		return false, ""
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	h, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(string(parts[0]), "="))
	if err != nil || json.Unmarshal(h, &hdr) != nil || hdr.Alg == "" {
		return false, ""
	}
	p, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(string(parts[1]), "="))
	if err != nil || !json.Valid(p) {
		return false, ""
	}
	if strings.EqualFold(hdr.Alg, "none") {
		return true, "unsigned"
	}
	return true, "alg " + hdr.Alg
}

// jksPrivateKey reads the first entry of a JKS/JCEKS keystore: tag 1 (or
// 3, a JCEKS secret key) holds a key; a store of trusted certificates
// (tag 2, a truststore) holds nothing secret.
func jksPrivateKey(head []byte) (bool, string) {
	if len(head) < 16 {
		return false, ""
	}
	switch binary.BigEndian.Uint32(head[12:16]) {
	case 1:
		return true, "private key entry"
	case 3:
		return true, "secret key entry"
	}
	return false, ""
}

// generic guards the keyword-only rules (password = "...") against words
// and identifiers: a value needs a letter and a digit, and must not look
// like a file path or dotted identifier.
func generic(v []byte) (bool, string) {
	if len(v) > 256 {
		return false, "" // a blob, not a credential someone typed
	}
	var letter, digit bool
	for _, c := range v {
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			letter = true
		}
	}
	if !letter || !digit {
		return false, ""
	}
	if bytes.HasPrefix(v, []byte("/")) || bytes.Count(v, []byte(".")) >= 2 && !bytes.ContainsAny(v, "+/=") {
		return false, ""
	}
	// Code, not a value: "exports2.HEADER_CHARS", "MAX_TOKEN_LEN".
	if identPath().Match(v) || constName().Match(v) {
		return false, ""
	}
	return true, ""
}

// Compiled on first use, like the rules.
var (
	identPath = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)+$`) })
	constName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`) })
)

// urlPassword rejects the spelled-out stand-ins URL examples use
// ("p%40ssword", "My%20Pass") once percent-decoded.
func urlPassword(v []byte) (bool, string) {
	dec, err := url.PathUnescape(string(v))
	if err != nil {
		dec = string(v)
	}
	l := strings.ToLower(dec)
	if len(dec) > 128 || IsPlaceholder([]byte(dec)) || len(l) < 20 && spelledPassword().MatchString(l) {
		return false, ""
	}
	return true, ""
}

var spelledPassword = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`p[a@4?]?s{1,2}w?[o0?]?r?d|pwd|secret|pass|wachtwoord|passwort|contrase|senha|parola|haslo|mot.?de.?passe`)
})

// basicAuth decodes an HTTP Basic credential: it must be "user:password"
// with a password that is not a placeholder.
func basicAuth(v []byte) (bool, string) {
	raw, err := base64.StdEncoding.DecodeString(string(v))
	if err != nil {
		return false, ""
	}
	_, pass, ok := bytes.Cut(raw, []byte(":"))
	if !ok || len(pass) < 4 || IsPlaceholder(pass) {
		return false, ""
	}
	for _, c := range raw {
		if c < 0x20 || c > 0x7e {
			return false, ""
		}
	}
	return true, ""
}

// Entropy is the Shannon entropy of b in bits per byte.
func Entropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	n := float64(len(b))
	var h float64
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}
