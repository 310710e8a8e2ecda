package onepassword

import (
	"context"
	"errors"
	"testing"

	"github.com/secretbroker/secretbroker/providers"
)

// A vault or item written by its id is checked under its name too, so a
// deny on the names holds for the ids.
func TestConnectRequestIdentity(t *testing.T) {
	f := newFixture(t)
	p := newProvider(t, f.env(nil))
	for _, tc := range []struct{ name, deny, ref string }{
		{"vault by id", "op://prod/database/password", "op://" + f.prod.ID + "/Database/password"},
		{"item by id", "op://prod/database/password", "op://Prod/" + f.db.ID + "/password"},
		{"both by id", "op://prod/database/password", "op://" + f.prod.ID + "/" + f.db.ID + "/password"},
		{"as written", "op://prod/database/password", "op://PROD/database/password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gate := func(id string) error {
				if id == tc.deny {
					return errors.New("denied " + id)
				}
				return nil
			}
			res := p.Fetch(providers.WithGate(context.Background(), gate), parse(t, tc.ref))
			if providers.KindOf(res[0].Err) != providers.KindDenied || res[0].Secret.Value.Len() != 0 {
				t.Fatalf("%s: %v; want a denial and no value", tc.ref, res[0].Err)
			}
		})
	}
}
