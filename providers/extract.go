package providers

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/secretbroker/secretbroker/secret"
)

// Extract applies a reference's #KEY to structured data (the decoded JSON or
// YAML of a secret: maps, slices, strings, numbers, booleans).
//
// With no key the whole object is returned as compact JSON with sorted keys;
// a string is returned as its bytes. With a key, a string value is returned
// as its bytes and anything else as its JSON encoding. A missing key is a
// KindNotFound error that lists the keys that exist, names only.
func Extract(ref Ref, data any) (secret.Value, error) {
	v := data
	if ref.HasKey {
		var err error
		if strings.HasPrefix(ref.Key, "/") {
			v, err = pointer(ref, data, ref.Key)
		} else {
			v, err = member(ref, data, ref.Key, "")
		}
		if err != nil {
			return secret.Value{}, err
		}
	}
	return encode(ref, v)
}

func encode(ref Ref, v any) (secret.Value, error) {
	switch x := v.(type) {
	case string:
		return secret.FromString(x), nil
	case []byte:
		return secret.New(x), nil
	}
	b, err := json.Marshal(normalize(v))
	if err != nil {
		// json errors can quote the offending value; keep only its type.
		return secret.Value{}, Errorf(ref, KindInvalid, "cannot encode a %T as JSON", v)
	}
	return secret.New(b), nil
}

// normalize turns map[any]any (older YAML decoders) into map[string]any so
// json.Marshal accepts it and sorts keys.
func normalize(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = normalize(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = normalize(e)
		}
		return s
	}
	return v
}

func member(ref Ref, data any, key, at string) (any, error) {
	switch m := normalize(data).(type) {
	case map[string]any:
		if v, ok := m[key]; ok {
			return v, nil
		}
		names := make([]string, 0, len(m))
		for k := range m {
			names = append(names, strconv.Quote(k))
		}
		sort.Strings(names)
		where := "the secret"
		if at != "" {
			where = at
		}
		return nil, Errorf(ref, KindNotFound, "no key %q in %s; keys there: %s", key, where, listOrNone(names))
	case []any:
		i, err := strconv.Atoi(key)
		if err != nil || i < 0 || i >= len(m) {
			return nil, Errorf(ref, KindNotFound, "no index %q in the array at %q (length %d)", key, at, len(m))
		}
		return m[i], nil
	default:
		return nil, Errorf(ref, KindInvalid, "cannot take key %q: the value at %q is a %s, not an object", key, orRoot(at), kindOfJSON(data))
	}
}

// pointer follows an RFC 6901 JSON pointer.
func pointer(ref Ref, data any, p string) (any, error) {
	cur := data
	at := ""
	for _, tok := range strings.Split(p[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		v, err := member(ref, cur, tok, orRoot(at))
		if err != nil {
			return nil, err
		}
		cur = v
		at += "/" + tok
	}
	return cur, nil
}

func orRoot(at string) string {
	if at == "" {
		return "the top level"
	}
	return at
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}

func kindOfJSON(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case []any:
		return "array"
	case nil:
		return "null"
	case bool:
		return "boolean"
	case map[string]any, map[any]any:
		return "object"
	default:
		return "number"
	}
}
