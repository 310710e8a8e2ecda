package report_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/secretbroker/secretbroker/lint/internal/testsecret"
	"github.com/secretbroker/secretbroker/lint/report"
	"github.com/secretbroker/secretbroker/lint/rules"
	"github.com/secretbroker/secretbroker/lint/scan"
)

func sample() (*scan.Result, string) {
	val := testsecret.GitHubPAT()
	return &scan.Result{
		Findings: []scan.Finding{
			{RuleID: "github-pat", Description: "GitHub personal access token", Severity: rules.Critical, SeverityStr: "critical",
				Target: "docker-archive:a.tar", Image: "a:1", Layer: 2, LayerDigest: "sha256:abc", History: 3,
				Path: "app/my config.js", Line: 4, Status: scan.StatusFinal, Preview: rules.Secret(val).Preview(),
				Fingerprint: "f1", Secret: rules.Secret(val), Fix: "revoke it"},
			{RuleID: "slack-bot-token", Description: "Slack bot token", Severity: rules.High, SeverityStr: "high",
				Target: "docker-archive:a.tar", Path: "config.Env[1]", Status: scan.StatusConfig, Fingerprint: "f2",
				KnownSecret: "slack"},
		},
		Skips:  []scan.Skip{{Target: "docker-archive:a.tar", Path: "x.zip", Reason: "too big", Incomplete: true}},
		Errors: []string{"layer 3: unexpected EOF"},
	}, val
}

func compile(t *testing.T, path string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := c.Compile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// officialSchemaModule ships OASIS's sarif-schema-2.1.0.json unchanged (gosec
// validates its own SARIF with it). The test takes the file from the Go
// module cache instead of committing a copy.
const officialSchemaModule = "github.com/securego/gosec/v2@v2.30.0"

// officialSchema downloads that module with the go command (no go.mod
// change) and returns the schema's path. Without the module proxy the test
// skips the official check, except under CI=true, where it fails.
func officialSchema(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", officialSchemaModule).Output()
	var mod struct{ Dir string }
	if err == nil {
		err = json.Unmarshal(out, &mod)
	}
	path := filepath.Join(mod.Dir, "report", "sarif", "testdata", "sarif-schema-2.1.0.json")
	if err == nil {
		_, err = os.Stat(path)
	}
	if err != nil {
		msg := fmt.Sprintf("the official SARIF 2.1.0 schema (from %s) is not available: %v", officialSchemaModule, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Log(msg + "; checking the subset schema only")
		return "testdata/sarif-2.1.0-subset.schema.json"
	}
	return path
}

// The SARIF output validates against the SARIF 2.1.0 schema: OASIS's
// official file (see officialSchema), the subset written for this tool, and
// a file placed at testdata/sarif-schema-2.1.0.json.
func TestSARIFSchema(t *testing.T) {
	res, val := sample()
	var buf bytes.Buffer
	if err := report.Write(&buf, "sarif", res, "test"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), val) {
		t.Fatal("SARIF holds the value")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	schemas := []string{"testdata/sarif-2.1.0-subset.schema.json", officialSchema(t)}
	if _, err := os.Stat("testdata/sarif-schema-2.1.0.json"); err == nil {
		schemas = append(schemas, "testdata/sarif-schema-2.1.0.json")
	}
	for _, s := range schemas {
		abs, _ := filepath.Abs(s)
		if err := compile(t, abs).Validate(doc); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	var log struct {
		Runs []struct {
			Invocations []struct {
				ExecutionSuccessful bool  `json:"executionSuccessful"`
				Notes               []any `json:"toolExecutionNotifications"`
			} `json:"invocations"`
			Results []struct {
				Fingerprints map[string]string `json:"partialFingerprints"`
			} `json:"results"`
		} `json:"runs"`
	}
	_ = json.Unmarshal(buf.Bytes(), &log)
	run := log.Runs[0]
	if len(run.Results) != 2 || run.Invocations[0].ExecutionSuccessful || len(run.Invocations[0].Notes) != 2 {
		t.Fatalf("results %d, invocation %+v: skips and errors must be notifications, not results", len(run.Results), run.Invocations)
	}
	if run.Results[0].Fingerprints["secretLocation/v1"] != "f1" {
		t.Fatal("fingerprint missing")
	}
}

// The schema catches a broken document (the check is not vacuous).
func TestSARIFSchemaRejects(t *testing.T) {
	bad, _ := jsonschema.UnmarshalJSON(strings.NewReader(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x"}},"results":[{"level":"fatal","message":{"text":"m"}}]}]}`))
	for _, s := range []string{"testdata/sarif-2.1.0-subset.schema.json", officialSchema(t)} {
		abs, _ := filepath.Abs(s)
		if compile(t, abs).Validate(bad) == nil {
			t.Errorf("%s: invalid level accepted", s)
		}
	}
}

func TestTextAndJSON(t *testing.T) {
	res, val := sample()
	for _, f := range []string{"text", "json"} {
		var buf bytes.Buffer
		if err := report.Write(&buf, f, res, "test"); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if strings.Contains(out, val) {
			t.Fatalf("%s output holds the value", f)
		}
		for _, want := range []string{"ghp_", "github-pat", "sha256:abc", "slack"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s output lacks %q:\n%s", f, want, out)
			}
		}
	}
}
