package rules

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// The lane search finds exactly what a naive search for each pattern
// finds, in order of End: with the real keyword set, on data full of
// keywords, with keywords across every lane boundary.
func TestAutomatonAgreesWithNaiveSearch(t *testing.T) {
	e, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	var pats []string
	for id := range e.byPattern {
		pats = append(pats, e.patternOf(id))
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, size := range []int{0, 1, 100, 4*4096 - 1, 4 * 4096, 70001, 1 << 18} {
		buf := make([]byte, size)
		const alphabet = "aAsS-_.:= \n\x00eyJhbG0123456789"
		for i := range buf {
			buf[i] = alphabet[rng.IntN(len(alphabet))]
		}
		// Plant keywords, some across the lane boundaries (size/4 apart).
		for i := 0; size > 64 && i < size/50; i++ {
			p := pats[rng.IntN(len(pats))]
			at := rng.IntN(size - len(p))
			if i%4 == 0 {
				at = max(0, min(size-len(p), (i/4%4)*(size/4)-rng.IntN(len(p))))
			}
			copy(buf[at:], p)
		}
		got := e.ac.findAll(nil, buf)
		if size > 64 && len(got) < size/100 {
			t.Fatalf("size %d: only %d hits: the test plants too few", size, len(got))
		}
		var want []acMatch
		for id, p := range pats {
			for from := 0; ; {
				i := bytes.Index(buf[from:], []byte(p))
				if i < 0 {
					break
				}
				want = append(want, acMatch{PatternID: id, Start: from + i, End: from + i + len(p)})
				from += i + 1
			}
		}
		key := func(a, b acMatch) int {
			if a.End != b.End {
				return a.End - b.End
			}
			return a.PatternID - b.PatternID
		}
		if !slices.IsSortedFunc(got, func(a, b acMatch) int { return a.End - b.End }) {
			t.Fatalf("size %d: hits not in order of End", size)
		}
		slices.SortFunc(got, key)
		slices.SortFunc(want, key)
		if !slices.Equal(got, want) {
			t.Fatalf("size %d: %d hits, naive search %d", size, len(got), len(want))
		}
	}
}
