package dockerfile

import "testing"

func TestSelected(t *testing.T) {
	for _, tt := range []struct {
		rel  string
		srcs []string
		want bool
	}{
		{"a/b.txt", []string{"."}, true},
		{"a/b.txt", []string{"./a"}, true},
		{"a/b.txt", []string{"a/b.txt"}, true},
		{"a/b.txt", []string{"b"}, false},
		{"conf.d/x", []string{"conf*"}, true},
		{"main.go", []string{"*.go"}, true},
		{"x", []string{"https://example.net/x"}, false},
	} {
		if got := selected(tt.rel, tt.srcs); got != tt.want {
			t.Errorf("selected(%q, %v) = %v", tt.rel, tt.srcs, got)
		}
	}
}
