package scan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/secretbroker/secretbroker/lint/source"
)

// configName selects the rules meant for KEY=VALUE pairs (secrets passed by
// variable name, as BuildKit's SecretsUsedInArgOrEnv check does).
const configName = "<image-config>"

// config scans what the image config carries: Env, Labels, Entrypoint, Cmd,
// Healthcheck, OnBuild, User, history (with BuildKit's recorded build-arg
// values) and annotations.
func (s *Scanner) config(target string, img source.Image) {
	sc := s.Engine.NewScanner()
	seen := map[string]bool{}
	emit := func(loc, text string, history int) {
		for _, m := range sc.ScanBytes([]byte(text), configName) {
			// pairs() repeats NAME=VALUE words: report each value once.
			if k := loc + "\x00" + m.Rule.ID + "\x00" + string(m.Secret.Reveal()); seen[k] {
				continue
			} else {
				seen[k] = true
			}
			f := fromMatch(m)
			f.Target, f.Image, f.Path, f.Status, f.History = target, img.Name, loc, StatusConfig, history
			f.Line = 0
			// The rule was written for .env files; say where it really is.
			f.Description = strings.Replace(f.Description, "a .env file", "the image config", 1)
			if img.Platform != "" {
				f.Platforms = []string{img.Platform}
			}
			s.add(f)
		}
	}
	for k, v := range img.Annotations {
		emit("annotations["+k+"]", k+"="+v, 0)
	}
	c := img.Config
	if c == nil {
		return
	}
	cc := c.Config
	for i, e := range cc.Env {
		emit(fmt.Sprintf("config.Env[%d]", i), e, 0)
	}
	keys := make([]string, 0, len(cc.Labels))
	for k := range cc.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		emit("config.Labels["+k+"]", k+"="+cc.Labels[k], 0)
	}
	emit("config.Entrypoint", pairs(strings.Join(cc.Entrypoint, " ")), 0)
	emit("config.Cmd", pairs(strings.Join(cc.Cmd, " ")), 0)
	if cc.Healthcheck != nil {
		emit("config.Healthcheck", pairs(strings.Join(cc.Healthcheck.Test, " ")), 0)
	}
	for i, o := range cc.OnBuild {
		emit(fmt.Sprintf("config.OnBuild[%d]", i), pairs(o), 0)
	}
	emit("config.User", cc.User, 0)
	for i, h := range c.History {
		emit(fmt.Sprintf("history[%d].created_by", i), pairs(h.CreatedBy), i+1)
	}
}

// pairs returns text followed by each NAME=VALUE word of it on a line of its
// own, so that rules anchored at a line start see build args
// ("|1 NPM_TOKEN=... /bin/sh -c ..."), ENV and ARG instructions and inline
// variable assignments.
func pairs(text string) string {
	var b strings.Builder
	b.WriteString(text)
	for _, w := range strings.Fields(text) {
		w = strings.Trim(w, `"';&|()`)
		if i := strings.IndexByte(w, '='); i > 0 {
			b.WriteByte('\n')
			b.WriteString(w)
		}
	}
	return b.String()
}
