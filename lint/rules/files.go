package rules

import (
	"path"
	"strings"
)

// fileIndex finds the path-restricted rules for a file name without trying
// every glob: a layer holds hundreds of thousands of files, and running
// path.Match for each glob of each rule on each of them showed up in
// profiles.
type fileIndex struct {
	exact  map[string][]*Rule    // base name
	ext    map[string][]fileGlob // last extension of a "*.x.y" glob -> globs
	suffix []fileGlob            // globs with a "/": path suffix
	other  []fileGlob            // anything else: path.Match on the base name
}

type fileGlob struct {
	glob string
	r    *Rule
}

func newFileIndex(rs []*Rule) fileIndex {
	x := fileIndex{exact: map[string][]*Rule{}, ext: map[string][]fileGlob{}}
	for _, r := range rs {
		for _, g := range r.Files {
			switch {
			case strings.Contains(g, "/"):
				x.suffix = append(x.suffix, fileGlob{g, r})
			case !strings.ContainsAny(g, `*?[\`):
				x.exact[g] = append(x.exact[g], r)
			case strings.HasPrefix(g, "*.") && !strings.ContainsAny(g[1:], `*?[\`):
				e := path.Ext(g)
				x.ext[e] = append(x.ext[e], fileGlob{g, r})
			default:
				x.other = append(x.other, fileGlob{g, r})
			}
		}
	}
	return x
}

// match returns the rules whose Files take name: file-only rules when
// fileOnly, content rules otherwise. Each rule appears once.
func (x *fileIndex) match(name string, fileOnly bool) []*Rule {
	var out []*Rule
	add := func(r *Rule) {
		if r.FileOnly() != fileOnly {
			return
		}
		for _, o := range out {
			if o == r {
				return
			}
		}
		out = append(out, r)
	}
	base := path.Base(name)
	for _, r := range x.exact[base] {
		add(r)
	}
	for _, g := range x.ext[path.Ext(base)] {
		if strings.HasSuffix(base, g.glob[1:]) {
			add(g.r)
		}
	}
	for _, g := range x.suffix {
		if strings.HasSuffix(name, g.glob) || name == strings.TrimPrefix(g.glob, "/") {
			add(g.r)
		}
	}
	for _, g := range x.other {
		if ok, _ := path.Match(g.glob, base); ok {
			add(g.r)
		}
	}
	return out
}
