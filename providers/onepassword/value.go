package onepassword

import (
	"context"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"
	"time"

	op "github.com/1Password/connect-sdk-go/onepassword"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/ssh"

	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/secret"
)

// now is the clock one-time passwords are computed at; tests set it.
var now = time.Now

// value picks the field or file a reference names out of a full item and
// applies ?attribute= and ?ssh-format=, the way 1Password resolves secret
// references: names and ids match case-insensitively; without a section, a
// field outside any named section wins over same-named ones inside sections.
func (p *connectProvider) value(ctx context.Context, ref providers.Ref, v vaultID, it *op.Item, section, field string) (secret.Value, error) {
	where := fmt.Sprintf("item %q in vault %q", it.Title, v.name)
	var sectionID string
	if section != "" {
		var labels []string
		for _, s := range it.Sections {
			if s == nil {
				continue
			}
			if s.Label != "" {
				labels = append(labels, s.Label)
			}
			if strings.EqualFold(s.Label, section) || strings.EqualFold(s.ID, section) {
				if sectionID != "" && sectionID != s.ID {
					return secret.Value{}, providers.Errorf(ref, providers.KindInvalid, "more than one section of %s is named %q; refer to the section by its id", where, section)
				}
				sectionID = s.ID
			}
		}
		if sectionID == "" {
			return secret.Value{}, providers.Errorf(ref, providers.KindNotFound, "no section %q in %s; sections there: %s", section, where, quoteList(labels))
		}
		where = fmt.Sprintf("section %q of %s", section, where)
	}
	inSection := func(s *op.ItemSection) bool {
		if section == "" {
			return true
		}
		return s != nil && s.ID == sectionID
	}
	unsectioned := func(s *op.ItemSection) bool {
		return s == nil || s.ID == "" || s.Label == "" && sectionLabel(it, s.ID) == ""
	}

	var fields, loose []*op.ItemField
	var labels []string
	for _, f := range it.Fields {
		if f == nil || !inSection(f.Section) {
			continue
		}
		if f.Label != "" {
			l := f.Label
			if section == "" && f.Section != nil {
				if sl := sectionLabel(it, f.Section.ID); sl != "" {
					l = sl + "/" + l
				}
			}
			labels = append(labels, l)
		}
		if strings.EqualFold(f.Label, field) || strings.EqualFold(f.ID, field) {
			fields = append(fields, f)
			if unsectioned(f.Section) {
				loose = append(loose, f)
			}
		}
	}
	if section == "" && len(loose) > 0 {
		fields = loose
	}
	if len(fields) > 1 {
		return secret.Value{}, providers.Errorf(ref, providers.KindInvalid, "%d fields of %s are labelled %q; add the section to the reference or use the field's id", len(fields), where, field)
	}
	if len(fields) == 1 {
		return p.fieldValue(ref, where, fields[0])
	}
	var files []*op.File
	var names []string
	for _, f := range it.Files {
		if f == nil || !inSection(f.Section) {
			continue
		}
		names = append(names, f.Name)
		if strings.EqualFold(f.Name, field) || strings.EqualFold(f.ID, field) {
			files = append(files, f)
		}
	}
	if len(files) > 1 {
		return secret.Value{}, providers.Errorf(ref, providers.KindInvalid, "%d files of %s are named %q; use the file's id", len(files), where, field)
	}
	if len(files) == 1 {
		return p.fileValue(ctx, ref, where, files[0])
	}
	msg := fmt.Sprintf("no field or file %q in %s; fields there: %s", field, where, quoteList(labels))
	if len(names) > 0 {
		msg += "; files: " + quoteList(names)
	}
	return secret.Value{}, providers.Errorf(ref, providers.KindNotFound, "%s", msg)
}

func sectionLabel(it *op.Item, id string) string {
	for _, s := range it.Sections {
		if s != nil && s.ID == id {
			return s.Label
		}
	}
	return ""
}

func (p *connectProvider) fieldValue(ref providers.Ref, where string, f *op.ItemField) (secret.Value, error) {
	switch a := ref.Param("attribute"); a {
	case "", "value":
		if ref.Param("ssh-format") == "openssh" {
			return openSSH(ref, where, f)
		}
		return secret.FromString(f.Value), nil
	case "type":
		return secret.FromString(strings.ToLower(string(f.Type))), nil
	case "id":
		return secret.FromString(f.ID), nil
	case "purpose":
		return secret.FromString(strings.ToLower(string(f.Purpose))), nil
	case "otp":
		return oneTimePassword(ref, where, f)
	default:
		return secret.Value{}, providers.Errorf(ref, providers.KindInvalid, "attribute=%s applies to file attachments, and %q of %s is a field (fields have: %s)",
			a, f.Label, where, strings.Join(FieldAttributes, ", "))
	}
}

func (p *connectProvider) fileValue(ctx context.Context, ref providers.Ref, where string, f *op.File) (secret.Value, error) {
	switch a := ref.Param("attribute"); a {
	case "", "content", "value":
		if a == "value" {
			break
		}
		if ref.Param("ssh-format") != "" {
			return secret.Value{}, providers.Errorf(ref, providers.KindInvalid, "ssh-format=openssh applies to an SSH key's private key field, and %q of %s is a file", f.Name, where)
		}
		// The SDK caches the content in the *op.File it is given, and the
		// item (with its files) is shared by every reference to it, read
		// in parallel: each read gets its own copy to write into.
		own := *f
		b, err := call(ctx, p.s, func() ([]byte, error) { return p.api.GetFileContent(&own) })
		if err != nil {
			return secret.Value{}, p.classify(ref, fmt.Sprintf("file %q of %s", f.Name, where), err)
		}
		return secret.New(b), nil
	case "type":
		return secret.FromString("file"), nil
	case "size":
		return secret.FromString(strconv.Itoa(f.Size)), nil
	case "id":
		return secret.FromString(f.ID), nil
	case "name":
		return secret.FromString(f.Name), nil
	}
	return secret.Value{}, providers.Errorf(ref, providers.KindInvalid, "attribute=%s applies to fields, and %q of %s is a file attachment (files have: %s)",
		ref.Param("attribute"), f.Name, where, strings.Join(FileAttributes, ", "))
}

// oneTimePassword computes the current TOTP code of a one-time password
// field, whose value is an otpauth:// URI or a base32 secret.
func oneTimePassword(ref providers.Ref, where string, f *op.ItemField) (secret.Value, error) {
	if f.Type != op.FieldTypeOTP && f.Type != "TOTP" {
		return secret.Value{}, providers.Errorf(ref, providers.KindInvalid, "attribute=otp needs a one-time password field, and %q of %s is of type %s", f.Label, where, strings.ToLower(string(f.Type)))
	}
	seed, opts := f.Value, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	if strings.HasPrefix(strings.ToLower(seed), "otpauth://") {
		k, err := otp.NewKeyFromURL(seed)
		if err != nil {
			// The URI holds the seed: say only that it does not parse.
			return secret.Value{}, providers.Errorf(ref, providers.KindInvalid, "the one-time password field %q of %s does not hold a valid otpauth:// URI", f.Label, where)
		}
		seed = k.Secret()
		opts.Period, opts.Digits, opts.Algorithm = uint(k.Period()), k.Digits(), k.Algorithm()
	}
	code, err := totp.GenerateCodeCustom(strings.ToUpper(strings.ReplaceAll(seed, " ", "")), now(), opts)
	if err != nil {
		return secret.Value{}, providers.Errorf(ref, providers.KindInvalid, "cannot compute a one-time password from field %q of %s: its secret is not valid base32", f.Label, where)
	}
	return secret.FromString(code), nil
}

// openSSH re-encodes an SSH key field's private key in OpenSSH format.
func openSSH(ref providers.Ref, where string, f *op.ItemField) (secret.Value, error) {
	key, err := ssh.ParseRawPrivateKey([]byte(f.Value))
	if err != nil {
		return secret.Value{}, providers.Errorf(ref, providers.KindInvalid, "ssh-format=openssh needs an SSH private key, and %q of %s does not hold one in a format Go can read (PKCS#1, PKCS#8, SEC1 or OpenSSH PEM)", f.Label, where)
	}
	blk, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		return secret.Value{}, providers.Errorf(ref, providers.KindInvalid, "cannot write the key of %q of %s in OpenSSH format (%T keys are not supported)", f.Label, where, key)
	}
	return secret.New(pem.EncodeToMemory(blk)), nil
}
