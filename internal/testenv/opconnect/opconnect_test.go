package opconnect

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func get(t *testing.T, s *Server, token, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The server answers as the Connect API documents: status codes and
// {"status", "message"} bodies.
func TestAPI(t *testing.T) {
	s, err := FromJSON([]byte(`{"tokens": {"fake-all": [], "fake-prod": ["Prod"]},
	  "vaults": [{"name": "Prod", "items": [{"title": "DB", "sections": ["Admin"],
	     "fields": [{"label": "pw", "value": "fake-v", "section": "Admin"}], "files": [{"name": "f.txt", "content": "fake-c"}]}]},
	             {"name": "Other"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	prod, other := s.vaults[0], s.vaults[1]
	item := prod.Items[0]
	q := func(f string) string { return "?filter=" + url.QueryEscape(f) }
	tests := []struct {
		token, path string
		status      int
		body        string
	}{
		{"", "/v1/vaults", 401, `{"status":401,"message":"Invalid token signature"}`},
		{"fake-wrong", "/v1/vaults", 401, `"Invalid token signature"`},
		{"fake-all", "/v1/vaults", 200, `"name":"Other"`},
		{"fake-prod", "/v1/vaults", 200, `"name":"Prod"`},
		{"fake-all", "/v1/vaults" + q(`title eq "Prod"`), 200, `"id":"` + prod.ID},
		{"fake-all", "/v1/vaults" + q(`name eq "Prod"`), 200, `"id":"` + prod.ID},
		{"fake-all", "/v1/vaults" + q(`title eq "prod"`), 200, `[]`},
		{"fake-all", "/v1/vaults" + q(`title co "P"`), 400, `"status":400`},
		{"fake-all", "/v1/vaults/" + prod.ID, 200, `"items":1`},
		{"fake-all", "/v1/vaults/aaaaaaaaaaaaaaaaaaaaaaaaaa", 404, `"message":"vault aaaaaaaaaaaaaaaaaaaaaaaaaa not found"`},
		{"fake-prod", "/v1/vaults/" + other.ID, 403, `"message":"vault ` + other.ID + ` is not in scope"`},
		{"fake-prod", "/v1/vaults/" + other.ID + "/items", 403, `not in scope`},
		{"fake-all", "/v1/vaults/" + prod.ID + "/items", 200, `"title":"DB"`},
		{"fake-all", "/v1/vaults/" + prod.ID + "/items" + q(`title eq "DB"`), 200, `"id":"` + item.ID},
		{"fake-all", "/v1/vaults/" + prod.ID + "/items" + q(`title eq "Nope"`), 200, `[]`},
		{"fake-all", "/v1/vaults/" + prod.ID + "/items/" + item.ID, 200, `"label":"Admin"`},
		{"fake-all", "/v1/vaults/" + prod.ID + "/items/bbbbbbbbbbbbbbbbbbbbbbbbbb", 404, `"message":"item bbbbbbbbbbbbbbbbbbbbbbbbbb not found"`},
		{"fake-all", "/v1/vaults/" + prod.ID + "/items/" + item.ID + "/files/" + item.Files[0].ID + "/content", 200, `fake-c`},
		{"fake-all", "/v1/vaults/" + prod.ID + "/items/" + item.ID + "/files/cccccccccccccccccccccccccc/content", 404, `file cccccccccccccccccccccccccc not found`},
	}
	for _, tt := range tests {
		status, body := get(t, s, tt.token, tt.path)
		if status != tt.status || !strings.Contains(body, tt.body) {
			t.Errorf("GET %s (%s): %d %s, want %d containing %s", tt.path, tt.token, status, body, tt.status, tt.body)
		}
	}
	// Lists hold summaries: no fields, as Connect's item list does.
	_, body := get(t, s, "fake-all", "/v1/vaults/"+prod.ID+"/items")
	var list []map[string]any
	json.Unmarshal([]byte(body), &list)
	if _, ok := list[0]["fields"]; ok {
		t.Error("item list includes fields")
	}
	s.FailNext(429)
	if status, body := get(t, s, "fake-all", "/v1/vaults"); status != 429 || !strings.Contains(body, `"status":429`) {
		t.Errorf("FailNext: %d %s", status, body)
	}
}

func TestFixtureErrors(t *testing.T) {
	for _, bad := range []string{`{}`, `{"tokens": {"t": ["Nope"]}}`, `{"tokens": {"t": []}, "vaults": [{"name": "V", "items": [{"title": "I", "fields": [{"label": "f", "section": "S"}]}]}]}`, `{"tokenz": {}}`} {
		if s, err := FromJSON([]byte(bad)); err == nil {
			s.Close()
			t.Errorf("FromJSON(%s) succeeded", bad)
		}
	}
}
