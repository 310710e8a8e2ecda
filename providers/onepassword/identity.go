package onepassword

import (
	"context"
	"strings"

	"github.com/secretbroker/secretbroker/providers"
)

// checkConnect is the Connect provider's request-time check. A vault or an
// item can be written by its name or by its id, so once Connect has said
// which vault (and then which item) a reference is, the reference must
// pass the policies under every spelling of it: as written, with the
// vault's name and id, and (item != "") with the item's title and id. A
// deny on op://prod/** then holds for op://<prod's id>/... too.
func checkConnect(ctx context.Context, ref providers.Ref, vaultName, vaultID, itemTitle, itemID string) error {
	parts := strings.Split(strings.ToLower(ref.Path), "/")
	ids := []string{ref.Target()}
	add := func(v, it string) {
		p := append([]string{}, parts...)
		if v != "" {
			p[0] = strings.ToLower(v)
		}
		if it != "" && len(p) > 1 {
			p[1] = strings.ToLower(it)
		}
		id := "op://" + strings.Join(p, "/")
		for _, x := range ids {
			if x == id {
				return
			}
		}
		ids = append(ids, id)
	}
	for _, v := range []string{vaultName, vaultID} {
		add(v, "")
		if itemTitle != "" || itemID != "" {
			add(v, itemTitle)
			add(v, itemID)
		}
	}
	err := providers.CheckGate(ctx, ids...)
	if pe, ok := err.(*providers.Error); ok {
		pe.Ref = ref.Raw
	}
	return err
}
