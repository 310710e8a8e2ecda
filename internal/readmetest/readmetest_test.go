package readmetest

import "testing"

func TestParse(t *testing.T) {
	md := "# Title\n\ntext\n\n## Run it\n\nSay:\n\n    cd somewhere   # a comment\n    # 1. a note\n    go build \\\n      ./x\n    docker compose logs app\n    #   app-1  | started: pid=…\n\n    echo two\n\nafter\n\n    not this\n"
	steps, err := parse(md, "Run it")
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 4 || steps[1].Cmd != "go build \\\n  ./x" || steps[3].Cmd != "echo two" || steps[0].Line != 9 {
		t.Fatalf("steps = %+v", steps)
	}
	want := steps[2].Want
	if len(want) != 1 {
		t.Fatalf("want = %v", want)
	}
	for _, out := range []string{"app-1  | started: pid=7", "app_1     | started: pid=7", "\x1b[36mapp_1  |\x1b[0m started: pid=7"} {
		if m := missing(steps[2], out); m != "" {
			t.Errorf("%q does not match %q", out, m)
		}
	}
	if m := missing(steps[2], "web-1  | started: pid=7"); m == "" {
		t.Error("another service's line matched")
	}
	if _, err := parse(md, "Nope"); err == nil {
		t.Error("a missing heading is not an error")
	}
}
