package process

import (
	"strings"
	"testing"
)

func TestParseCapabilities(t *testing.T) {
	tests := []struct {
		in   []string
		want []int
		err  string
	}{
		{nil, nil, ""},
		{[]string{"CAP_NET_BIND_SERVICE"}, []int{10}, ""},
		{[]string{"net_bind_service", "cap_chown", "Cap_Sys_Admin"}, []int{10, 0, 21}, ""},
		{[]string{"CAP_CHECKPOINT_RESTORE"}, []int{40}, ""},
		{[]string{"CAP_NET_BIND_SERVIC"}, nil, `unknown capability "CAP_NET_BIND_SERVIC"`},
		{[]string{"ALL"}, nil, `unknown capability "ALL"`},
		{[]string{"10"}, nil, "unknown capability"},
	}
	for _, tt := range tests {
		got, err := ParseCapabilities(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseCapabilities(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("ParseCapabilities(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("ParseCapabilities(%q) = %v, want %v", tt.in, got, tt.want)
			}
		}
	}
}

// TestCheckIDs: a setuid or setgid install (real ids differ from
// effective) is refused.
func TestCheckIDs(t *testing.T) {
	tests := []struct {
		ruid, euid, rgid, egid int
		ok                     bool
	}{
		{0, 0, 0, 0, true},
		{1000, 1000, 1000, 1000, true},
		{1000, 0, 1000, 1000, false}, // setuid root
		{1000, 1000, 1000, 0, false}, // setgid root
		{0, 1000, 0, 0, false},
	}
	for _, tt := range tests {
		if err := checkIDs(tt.ruid, tt.euid, tt.rgid, tt.egid); (err == nil) != tt.ok {
			t.Errorf("checkIDs(%d,%d,%d,%d) = %v, want ok=%v", tt.ruid, tt.euid, tt.rgid, tt.egid, err, tt.ok)
		}
	}
}

func TestParsePID(t *testing.T) {
	tests := []struct {
		in   string
		want int // 0 refused
	}{
		{"1234", 1234}, {"1234\n", 1234}, {" 42 ", 42}, {"4194304", 4194304},
		{"4294967295", 0}, {"4294967296", 0}, {"-1", 0}, {"0", 0}, {"1", 0}, {"", 0},
		{"0123", 0}, {"+5", 0}, {"12a", 0}, {"0x10", 0}, {"4194305", 0}, {"1 2", 0},
	}
	for _, tt := range tests {
		got, err := ParsePID(tt.in)
		if tt.want == 0 && err == nil || tt.want != 0 && (err != nil || got != tt.want) {
			t.Errorf("ParsePID(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}
