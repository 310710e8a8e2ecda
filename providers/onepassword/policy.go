package onepassword

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	op "github.com/1Password/connect-sdk-go/onepassword"

	"github.com/secretbroker/secretbroker/providers"
)

// Vaults returns the vaults the op:// references read, as written (first
// spelling wins; names are case-insensitive), sorted.
func Vaults(refs []providers.Ref) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range refs {
		if r.Scheme != Scheme {
			continue
		}
		v, _, _, _ := Parts(r)
		if v == "" || seen[strings.ToLower(v)] {
			continue
		}
		seen[strings.ToLower(v)] = true
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i]) < strings.ToLower(out[j]) })
	return out
}

// WritePolicy prints the grant the spec needs: read access to items in the
// vaults its references name, and nothing else.
func WritePolicy(w io.Writer, refs []providers.Ref) error {
	vaults := Vaults(refs)
	if len(vaults) == 0 {
		_, err := fmt.Fprintln(w, "# The spec has no op:// references: it needs no 1Password access.")
		return err
	}
	var b strings.Builder
	var sa, ct strings.Builder
	for _, v := range vaults {
		fmt.Fprintf(&sa, " --vault %q", v+":read_items")
		fmt.Fprintf(&ct, " --vault %q", v+",r")
	}
	fmt.Fprintln(&b, "# 1Password access this spec needs (inject policy onepassword):")
	fmt.Fprintln(&b, "# Read Items on exactly these vaults, and no other permission or vault.")
	fmt.Fprintln(&b, "#")
	fmt.Fprintln(&b, "# Service account:")
	fmt.Fprintf(&b, "#   op service-account create NAME%s\n", sa.String())
	fmt.Fprintln(&b, "# Connect token (the Connect server must have these vaults too):")
	fmt.Fprintf(&b, "#   op connect token create NAME --server SERVER%s\n", ct.String())
	fmt.Fprintln(&b, "vaults:")
	for _, v := range vaults {
		note := ""
		if idRE.MatchString(v) {
			note = "  # an id, or a name that looks like one"
		}
		fmt.Fprintf(&b, "  - name: %q%s\n    permissions: [read_items]\n", v, note)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// AuditReport compares the vaults a credential can read with those a spec needs.
type AuditReport struct {
	Mode    Mode
	Needed  []string // vaults the references name
	Visible []string // vaults the credential can read
	Extra   []string // visible and not needed
	Missing []string // needed and not visible
}

// Broader reports whether the credential reaches vaults the spec does not use.
func (r AuditReport) Broader() bool { return len(r.Extra) > 0 }

// Audit lists the vaults the configured credential can read and compares
// them with the spec's. It needs a credential (a configuration error
// otherwise) and, for a service account, starts the SDK.
func Audit(ctx context.Context, env providers.Env, refs []providers.Ref) (AuditReport, error) {
	s, err := Load(env)
	if err != nil {
		return AuditReport{}, err
	}
	rep := AuditReport{Mode: s.Mode, Needed: Vaults(refs)}
	var visible []named
	probe := providers.Ref{Raw: "1Password", Scheme: Scheme}
	if s.Mode == ModeConnect {
		p := newConnect(s, env)
		vs, err := call(ctx, s, func() ([]op.Vault, error) { return p.api.GetVaults() })
		if err != nil {
			return AuditReport{}, p.classify(probe, "list vaults", err)
		}
		for _, v := range vs {
			visible = append(visible, named{v.ID, v.Name})
		}
	} else {
		pv, err := newServiceAccount(s, env)
		if err != nil {
			return AuditReport{}, err
		}
		p := pv.(*serviceAccountProvider)
		c, err := p.sdk(ctx)
		if err != nil {
			return AuditReport{}, p.classify(probe, err)
		}
		if visible, err = c.Vaults(ctx); err != nil {
			return AuditReport{}, p.classify(probe, err)
		}
	}
	return compare(rep, visible), nil
}

func compare(rep AuditReport, visible []named) AuditReport {
	used := map[int]bool{}
	for _, need := range rep.Needed {
		found := false
		for i, v := range visible {
			if v.ID == need || strings.EqualFold(v.Name, need) {
				used[i], found = true, true
			}
		}
		if !found {
			rep.Missing = append(rep.Missing, need)
		}
	}
	for i, v := range visible {
		rep.Visible = append(rep.Visible, v.Name)
		if !used[i] {
			rep.Extra = append(rep.Extra, v.Name)
		}
	}
	sort.Strings(rep.Visible)
	sort.Strings(rep.Extra)
	return rep
}

// WriteAudit prints the report: what the spec needs, what the credential
// reaches beyond it, and what it lacks.
func WriteAudit(w io.Writer, rep AuditReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "1Password (%s): the spec reads %d vault(s): %s\n", rep.Mode, len(rep.Needed), quoteList(rep.Needed))
	fmt.Fprintf(&b, "the credential can read %d vault(s): %s\n", len(rep.Visible), quoteList(rep.Visible))
	if rep.Broader() {
		fmt.Fprintf(&b, "broader than needed: it can also read %s; restrict it to the vaults above\n", quoteList(rep.Extra))
	} else {
		fmt.Fprintln(&b, "no broader than needed (vault scope; 1Password's APIs do not show whether it may also write)")
	}
	if len(rep.Missing) > 0 {
		fmt.Fprintf(&b, "missing: it cannot read %s, which the spec needs\n", quoteList(rep.Missing))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
