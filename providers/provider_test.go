package providers

import (
	"errors"
	"testing"
)

func TestErrorMessages(t *testing.T) {
	for _, c := range []struct {
		err  *Error
		want string
	}{
		{&Error{Ref: "vault://a#b", Kind: KindDenied, Detail: "no read"}, "vault://a#b: denied: no read"},
		// No reference: no leading ": ".
		{&Error{Kind: KindConfig, Err: errors.New("no Vault token")}, "misconfigured: no Vault token"},
		// A cause of the same kind is not named twice.
		{&Error{Ref: "providers.vault", Kind: KindConfig, Err: &Error{Kind: KindConfig, Detail: "unknown auth method \"x\""}}, `providers.vault: misconfigured: unknown auth method "x"`},
		{&Error{Ref: "r", Kind: KindConfig, Detail: "login", Err: &Error{Ref: "r", Kind: KindConfig, Detail: "bad"}}, "r: misconfigured: login: bad"},
		// A cause of another kind keeps its own words.
		{&Error{Ref: "r", Kind: KindOther, Err: &Error{Kind: KindDenied, Detail: "x"}}, "r: failed: denied: x"},
		// A library's multi-line error is put on one line.
		{&Error{Ref: "r", Kind: KindDenied, Err: errors.New("1 error occurred:\n\t* permission denied\n\n")}, "r: denied: permission denied"},
		{&Error{Ref: "r", Kind: KindOther, Err: errors.New("2 errors occurred:\n\t* a\n\t* b\n\n")}, "r: failed: a; b"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}
