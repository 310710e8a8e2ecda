package rules

import "errors"

// automaton is the keyword prefilter: an Aho-Corasick DFA (every failure
// transition compiled into a flat table, like github.com/coregx/ahocorasick,
// which this replaces) whose search runs several lanes over one buffer at
// once.
//
// Why not the library: its search walks the buffer with one state, and each
// step waits for the table load of the step before (a dependent chain of
// L1/L2 loads per byte). That chain, not the instruction count, was half of
// lint's CPU on layer data (bench/lint.sh profile). Splitting the buffer
// into independent lanes lets the CPU overlap those loads; the library has
// no such entry point and keeps its table private.
type automaton struct {
	// trans[sid+class] is the next state, premultiplied by stride; the high
	// bit marks a state with matches.
	trans   []uint32
	classes [256]uint8
	// stride is the number of byte classes: a row per state, not padded to
	// a power of two, which keeps the table (about 4 MiB) a third smaller.
	stride uint32
	// out[state index] lists the pattern ids that end there (its own and
	// those of its failure chain).
	out    [][]int32
	lens   []int32
	maxLen int
}

// patternOf returns pattern id as compiled (for tests).
func (e *Engine) patternOf(id int) string { return e.pats[id] }

// acMatch is a pattern occurrence: buf[Start:End] is pattern PatternID.
type acMatch struct {
	PatternID  int
	Start, End int
}

const acFlag = 1 << 31

// newAutomaton compiles pats (no empty pattern) into a DFA.
func newAutomaton(pats []string) (*automaton, error) {
	a := &automaton{}
	// Byte classes: one per byte that occurs in a pattern, class 0 for all
	// others (they always lead back to the start state's row).
	n := 1
	for _, p := range pats {
		if p == "" {
			return nil, errors.New("rules: empty keyword")
		}
		for i := 0; i < len(p); i++ {
			if a.classes[p[i]] == 0 {
				a.classes[p[i]] = uint8(n)
				n++
				if n > 255 {
					return nil, errors.New("rules: too many distinct keyword bytes")
				}
			}
		}
	}
	stride := n
	a.stride = uint32(n)
	// Trie; its edges are filled into trans directly (0 = no edge, since
	// the start state is never a child).
	row := func(s int) []uint32 { return a.trans[s*stride : (s+1)*stride] }
	a.trans = make([]uint32, stride)
	a.out = [][]int32{nil}
	for id, p := range pats {
		s := 0
		for i := 0; i < len(p); i++ {
			c := a.classes[p[i]]
			next := row(s)[c]
			if next == 0 {
				next = uint32(len(a.out))
				a.trans = append(a.trans, make([]uint32, stride)...)
				a.out = append(a.out, nil)
				row(s)[c] = next
			}
			s = int(next)
		}
		a.out[s] = append(a.out[s], int32(id))
		a.lens = append(a.lens, int32(len(p)))
		a.maxLen = max(a.maxLen, len(p))
	}
	// Breadth first: a state's failure target is shallower, so it is done
	// before the state, and a missing edge is the failure target's edge.
	fail := make([]uint32, len(a.out))
	queue := make([]uint32, 0, len(a.out))
	for c := 0; c < stride; c++ {
		if t := row(0)[c]; t != 0 {
			queue = append(queue, t)
		}
	}
	for q := 0; q < len(queue); q++ {
		s := queue[q]
		a.out[s] = append(a.out[s], a.out[fail[s]]...)
		r, fr := row(int(s)), row(int(fail[s]))
		for c := range r {
			if t := r[c]; t != 0 {
				fail[t] = fr[c]
				queue = append(queue, t)
			} else {
				r[c] = fr[c]
			}
		}
	}
	if len(a.trans) >= acFlag {
		return nil, errors.New("rules: keyword automaton too large")
	}
	// Premultiply and flag.
	for i, t := range a.trans {
		v := t * a.stride
		if len(a.out[t]) > 0 {
			v |= acFlag
		}
		a.trans[i] = v
	}
	return a, nil
}

// acLanes is how many independent states the search advances per step.
const acLanes = 4

// findAll appends every (overlapping) occurrence in buf to dst, in order of
// End. Each lane owns the matches that end in its part of buf and starts
// maxLen-1 bytes early, so that a match across a lane boundary is whole.
func (a *automaton) findAll(dst []acMatch, buf []byte) []acMatch {
	n := len(buf)
	if n < acLanes*4096 {
		return a.lane(dst, buf, 0, 0, n)
	}
	var lo, from, hi [acLanes]int
	part := n / acLanes
	for k := range acLanes {
		from[k] = k * part
		lo[k] = max(0, from[k]-(a.maxLen-1))
		hi[k] = from[k] + part
	}
	hi[acLanes-1] = n
	var found [acLanes][]acMatch
	found[0] = dst
	var st [acLanes]uint32
	trans, classes := a.trans, &a.classes
	// All lanes step together for the shortest lane's length; a flagged
	// state is rare, so it is handled out of the loop's way.
	steps := hi[0] - lo[0]
	for k := 1; k < acLanes; k++ {
		steps = min(steps, hi[k]-lo[k])
	}
	b0, b1, b2, b3 := buf[lo[0]:lo[0]+steps], buf[lo[1]:lo[1]+steps], buf[lo[2]:lo[2]+steps], buf[lo[3]:lo[3]+steps]
	s0, s1, s2, s3 := st[0], st[1], st[2], st[3]
	for i := 0; i < steps; i++ {
		s0 = trans[s0&^acFlag+uint32(classes[b0[i]])]
		s1 = trans[s1&^acFlag+uint32(classes[b1[i]])]
		s2 = trans[s2&^acFlag+uint32(classes[b2[i]])]
		s3 = trans[s3&^acFlag+uint32(classes[b3[i]])]
		if (s0|s1|s2|s3)&acFlag != 0 {
			st = [acLanes]uint32{s0, s1, s2, s3}
			for k := range acLanes {
				if st[k]&acFlag != 0 && lo[k]+i >= from[k] {
					found[k] = a.emit(found[k], st[k], lo[k]+i+1)
				}
			}
		}
	}
	st = [acLanes]uint32{s0, s1, s2, s3}
	for k := range acLanes {
		found[k] = a.resume(found[k], buf, st[k], lo[k]+steps, from[k], hi[k])
	}
	out := found[0]
	for k := 1; k < acLanes; k++ {
		out = append(out, found[k]...)
	}
	return out
}

// lane searches buf[lo:hi] from the start state, keeping matches that end
// after from.
func (a *automaton) lane(dst []acMatch, buf []byte, lo, from, hi int) []acMatch {
	return a.resume(dst, buf, 0, lo, from, hi)
}

func (a *automaton) resume(dst []acMatch, buf []byte, s uint32, at, from, hi int) []acMatch {
	trans, classes := a.trans, &a.classes
	for i := at; i < hi; i++ {
		s = trans[s&^acFlag+uint32(classes[buf[i]])]
		if s&acFlag != 0 && i >= from {
			dst = a.emit(dst, s, i+1)
		}
	}
	return dst
}

func (a *automaton) emit(dst []acMatch, s uint32, end int) []acMatch {
	for _, id := range a.out[(s&^acFlag)/a.stride] {
		dst = append(dst, acMatch{PatternID: int(id), Start: end - int(a.lens[id]), End: end})
	}
	return dst
}
