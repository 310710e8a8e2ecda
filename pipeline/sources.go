package pipeline

import (
	"errors"

	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/policy"
	"github.com/secretbroker/secretbroker/spec"
)

// Sources is the read gate's verdict on each template source of a spec
// loaded with spec.LoadPlan, in the spec's order: nil when the source
// passes (--user may read it, a regular file under the cap, not /proc or
// /sys: what spec checked; and the guardrail, on its real path), else why
// not. Err is what inject would exit with: 64 when the gate refused any
// source (a declaration problem comes before the policy), else 77 when
// the guardrail did, else nil. Call it after CheckPolicy has loaded the
// policies. It reads nothing: spec read each source once, and a verdict
// never carries the file's text.
func (r *Run) Sources() (verdicts []error, err error) {
	var refused spec.Problems
	var denied policy.Denied
	withheld := false
	for _, t := range r.Spec.Templates {
		var v error
		if t.Refused != nil {
			refused = append(refused, spec.Problem{Path: t.Where + ".source", Msg: t.Refused.Error()})
			v = t.Refused
		} else if d := r.Policies.CheckFile(t.Where+" source", t.Identity); len(d) > 0 {
			denied = append(denied, d...)
			v = policy.Denied(d)
		} else if t.Withheld {
			// Not read because the guardrail could not be (CheckPolicy
			// says why): no verdict, least of all "passes".
			v = errors.New("not read: the guardrail could not be read")
			withheld = true
		}
		verdicts = append(verdicts, v)
	}
	switch {
	case len(refused) > 0:
		return verdicts, cli.Exit(cli.ExitUsage, refused)
	case len(denied) > 0:
		return verdicts, cli.Exit(cli.ExitPolicy, denied)
	case withheld:
		return verdicts, cli.Exit(cli.ExitPolicy, errors.New("template sources were not read: the guardrail could not be read"))
	}
	return verdicts, nil
}
