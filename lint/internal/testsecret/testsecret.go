// Package testsecret builds realistic-looking credentials at test time, so
// that no such string is ever committed (the repository's hooks reject
// them). Every value is random, so none is a live credential either.
package testsecret

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"

	"github.com/secretbroker/secretbroker/lint/rules"
)

const (
	upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	alnum      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	hexdigits  = "0123456789abcdef"
)

// Random returns n characters drawn from alphabet. A draw of 8 or more
// that the placeholder filter rightly takes for a stand-in (a word such as
// "todo" at its edge or at a camelCase boundary, one repeated character) is
// drawn again: a detection test must not depend on the draw, and the
// filter's own cases are tested in lint/rules.
func Random(alphabet string, n int) string {
	b := make([]byte, n)
	for {
		for i := range b {
			v, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
			b[i] = alphabet[v.Int64()]
		}
		if n < 8 || !rules.IsPlaceholder(b) {
			return string(b)
		}
	}
}

// Shape describes s without its value, for a failing test's message: runs
// of letters and digits become their classes and length ("[Aa9]{90}"),
// other bytes stay; then the placeholder filter's verdict and the entropy
// of the longest run.
func Shape(s string) string {
	var out strings.Builder
	longest := ""
	for i := 0; i < len(s); {
		j := i
		var classes [3]bool
		for ; j < len(s) && isAlnum(s[j]); j++ {
			switch c := s[j]; {
			case c >= 'A' && c <= 'Z':
				classes[0] = true
			case c >= 'a' && c <= 'z':
				classes[1] = true
			default:
				classes[2] = true
			}
		}
		if j == i {
			fmt.Fprintf(&out, "%q", s[i:i+1])
			i++
			continue
		}
		out.WriteByte('[')
		for k, c := range "Aa9" {
			if classes[k] {
				out.WriteRune(c)
			}
		}
		fmt.Fprintf(&out, "]{%d}", j-i)
		if j-i > len(longest) {
			longest = s[i:j]
		}
		i = j
	}
	why := rules.PlaceholderReason([]byte(longest))
	if why == "" {
		why = "no"
	}
	fmt.Fprintf(&out, "; longest run: placeholder %s, entropy %.2f", why, rules.Entropy([]byte(longest)))
	return out.String()
}

func isAlnum(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}

// GitHubPAT returns a classic token with a valid checksum.
func GitHubPAT() string {
	body := Random(alnum, 30)
	return "gh" + "p_" + body + rules.Base62CRC32([]byte(body))
}

// GitHubPATBadChecksum looks like a token but its checksum is wrong.
func GitHubPATBadChecksum() string {
	body := Random(alnum, 30)
	sum := []byte(rules.Base62CRC32([]byte(body)))
	sum[5] ^= 1
	return "gh" + "p_" + body + string(sum)
}

// AWSKeyID returns an access key id.
func AWSKeyID() string { return "AK" + "IA" + Random(upperAlnum, 16) }

// AWSSecret returns a 40-character secret access key.
func AWSSecret() string {
	return Random(alnum+"+/", 40)
}

// Slack returns a bot token.
func Slack() string {
	return "xo" + "xb-" + Random("0123456789", 12) + "-" + Random("0123456789", 12) + "-" + Random(alnum, 24)
}

// Vault returns a service token.
func Vault() string { return "hv" + "s." + Random(alnum, 90) }

// Stripe returns a live secret key.
func Stripe() string { return "sk" + "_live_" + Random(alnum, 32) }

// NPM returns an npm token with a valid checksum.
func NPM() string {
	body := Random(alnum, 30)
	return "np" + "m_" + body + rules.Base62CRC32([]byte(body))
}

// Hex returns n random hex digits.
func Hex(n int) string { return Random(hexdigits, n) }

// Alnum returns n random letters and digits.
func Alnum(n int) string { return Random(alnum, n) }

// RSAKeyPEM returns a PKCS#1 RSA private key (1024 bits: fast, tests only).
func RSAKeyPEM() string {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE" + " KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

// ECKeyPEM returns a PKCS#8 EC private key.
func ECKeyPEM() string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE" + " KEY", Bytes: der}))
}

// JWT returns an HS256-shaped token with a random signature.
func JWT() string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
		enc.EncodeToString([]byte(`{"sub":"`+Alnum(10)+`","iat":1700000000}`)) + "." +
		enc.EncodeToString([]byte(Random(alnum, 32)))
}

// OpenSSHKeyPEM returns an OpenSSH-format ed25519 private key, built by
// hand (PROTOCOL.key) so that tests need no SSH library. An "encrypted" one
// only names a cipher: enough for the format check.
func OpenSSHKeyPEM(encrypted bool) string {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	str := func(b []byte) []byte {
		out := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
		return append(out, b...)
	}
	pubBlob := append(str([]byte("ssh-ed25519")), str(pub)...)
	check := make([]byte, 4)
	_, _ = rand.Read(check)
	var privBlob []byte
	privBlob = append(privBlob, check...)
	privBlob = append(privBlob, check...)
	privBlob = append(privBlob, pubBlob...)
	privBlob = append(privBlob, str(priv)...)
	privBlob = append(privBlob, str([]byte("test"))...)
	for i := byte(1); len(privBlob)%8 != 0; i++ {
		privBlob = append(privBlob, i)
	}
	cipher, kdf := "none", "none"
	if encrypted {
		cipher, kdf = "aes256-ctr", "bcrypt"
	}
	b := []byte("openssh-key-v1\x00")
	b = append(b, str([]byte(cipher))...)
	b = append(b, str([]byte(kdf))...)
	b = append(b, str(nil)...)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = append(b, str(pubBlob)...)
	b = append(b, str(privBlob)...)
	return string(pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE" + " KEY", Bytes: b}))
}

// Password returns n random letters and digits with at least one of each
// (the generic rules require both), so tests never flake.
func Password(n int) string {
	return Random("abcdefghijklmnopqrstuvwxyz", 1) + Random("0123456789", 1) + Alnum(n-2)
}
