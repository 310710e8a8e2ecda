//go:build !noonepassword_sdk

package onepassword

import (
	"context"
	"errors"

	sdk "github.com/1password/onepassword-sdk-go"
)

// Version is reported to 1Password as the integration's version.
var Version = "dev"

func init() { newSDKClient = newRealSDK }

type realSDK struct{ c *sdk.Client }

func newRealSDK(ctx context.Context, token string) (sdkClient, error) {
	c, err := sdk.NewClient(ctx, sdk.WithServiceAccountToken(token), sdk.WithIntegrationInfo("secretbroker inject", Version))
	if err != nil {
		return nil, sdkErr(err)
	}
	return realSDK{c}, nil
}

func sdkErr(err error) error {
	var rl *sdk.RateLimitExceededError
	if errors.As(err, &rl) {
		return &sdkRateLimited{msg: rl.Error()}
	}
	return err
}

func (r realSDK) ResolveAll(ctx context.Context, refs []string) (map[string]sdkResult, error) {
	resp, err := r.c.Secrets().ResolveAll(ctx, refs)
	if err != nil {
		return nil, sdkErr(err)
	}
	out := make(map[string]sdkResult, len(resp.IndividualResponses))
	for ref, res := range resp.IndividualResponses {
		switch {
		case res.Error != nil:
			e := sdkResult{Failed: true, ErrType: string(res.Error.Type)}
			switch res.Error.Type {
			case sdk.ResolveReferenceErrorTypeVariantParsing:
				e.ErrMsg = string(res.Error.Parsing())
			case sdk.ResolveReferenceErrorTypeVariantUnableToGenerateTOTPCode:
				e.ErrMsg = string(res.Error.UnableToGenerateTOTPCode())
			}
			out[ref] = e
		case res.Content != nil:
			out[ref] = sdkResult{Secret: res.Content.Secret}
		default:
			out[ref] = sdkResult{Failed: true, ErrType: "other", ErrMsg: "empty response"}
		}
	}
	return out, nil
}

func (r realSDK) Vaults(ctx context.Context) ([]named, error) {
	vs, err := r.c.Vaults().List(ctx)
	if err != nil {
		return nil, sdkErr(err)
	}
	out := make([]named, len(vs))
	for i, v := range vs {
		out[i] = named{v.ID, v.Title}
	}
	return out, nil
}

func (r realSDK) Items(ctx context.Context, vaultID string) ([]named, error) {
	its, err := r.c.Items().List(ctx, vaultID)
	if err != nil {
		return nil, sdkErr(err)
	}
	out := make([]named, len(its))
	for i, it := range its {
		out[i] = named{it.ID, it.Title}
	}
	return out, nil
}

func (r realSDK) Item(ctx context.Context, vaultID, itemID string) (itemNames, error) {
	it, err := r.c.Items().Get(ctx, vaultID, itemID)
	if err != nil {
		return itemNames{}, sdkErr(err)
	}
	var n itemNames
	for _, s := range it.Sections {
		n.Sections = append(n.Sections, named{s.ID, s.Title})
	}
	for _, f := range it.Fields {
		n.Fields = append(n.Fields, f.Title)
	}
	for _, f := range it.Files {
		n.Files = append(n.Files, f.Attributes.Name)
	}
	return n, nil
}
