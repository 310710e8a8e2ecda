// Package opconnect is a 1Password Connect server for tests: the REST
// endpoints of the Connect API (version 1.5.7 of its OpenAPI description)
// that a reader of secrets calls, with the status codes and
// {"status":..., "message":...} error bodies the API documents.
//
//	GET /v1/vaults[?filter=title eq "NAME"]          (also name eq "NAME")
//	GET /v1/vaults/{vaultUuid}
//	GET /v1/vaults/{vaultUuid}/items[?filter=title eq "TITLE"]
//	GET /v1/vaults/{vaultUuid}/items/{itemUuid}
//	GET /v1/vaults/{vaultUuid}/items/{itemUuid}/files/{fileUuid}/content
//	GET /heartbeat, /health
//
// Every /v1 request needs "Authorization: Bearer TOKEN" with a token the
// server knows (401 "Invalid token signature" otherwise). A token may be
// scoped to some vaults: the others are left out of its vault list and
// answer 403 "vault ID is not in scope". Items are returned as summaries in
// lists and in full (sections, fields, files) by id, as Connect does.
//
// The provider's tests use it in process; cmd/inject's testscripts start it
// with Serve, which prints its address and runs until killed.
package opconnect

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Version is what the server reports in the 1Password-Connect-Version header.
const Version = "1.7.3"

// Server is a running Connect test server.
type Server struct {
	*httptest.Server

	mu       sync.Mutex
	vaults   []*Vault
	tokens   map[string]map[string]bool // token -> vault ids in scope; nil: all
	failNext []int                      // statuses to answer with before serving normally
	requests []string                   // "GET /v1/vaults?filter=..." in order
	delay    time.Duration
}

// Vault is a vault on the server.
type Vault struct {
	ID, Name string
	Items    []*Item
}

// Item is an item in a vault.
type Item struct {
	ID, Title, Category string
	Sections            []Section
	Fields              []Field
	Files               []File
}

// Section is a named section of an item.
type Section struct{ ID, Label string }

// Field is a field of an item. Type is Connect's (STRING, CONCEALED, OTP...).
type Field struct {
	ID, Label, Type, Purpose, Value string
	SectionID                       string // "" for the item's default section
}

// File is a file attached to an item.
type File struct {
	ID, Name  string
	Content   []byte
	SectionID string
}

// New starts a server that accepts token for every vault. Close it when done.
func New(token string) *Server {
	s := &Server{tokens: map[string]map[string]bool{token: nil}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// NewID returns a fresh 1Password-style id: 26 characters of [a-z0-9].
func NewID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	b := make([]byte, 26)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// AddToken makes token valid for the given vaults only (all when none given).
func (s *Server) AddToken(token string, vaultIDs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(vaultIDs) == 0 {
		s.tokens[token] = nil
		return
	}
	scope := map[string]bool{}
	for _, id := range vaultIDs {
		scope[id] = true
	}
	s.tokens[token] = scope
}

// AddVault adds an empty vault.
func (s *Server) AddVault(name string) *Vault {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := &Vault{ID: NewID(), Name: name}
	s.vaults = append(s.vaults, v)
	return v
}

// AddItem adds an item to v; ids left empty are filled in.
func (v *Vault) AddItem(it *Item) *Item {
	if it.ID == "" {
		it.ID = NewID()
	}
	if it.Category == "" {
		it.Category = "LOGIN"
	}
	for i := range it.Sections {
		if it.Sections[i].ID == "" {
			it.Sections[i].ID = NewID()
		}
	}
	for i := range it.Fields {
		if it.Fields[i].ID == "" {
			it.Fields[i].ID = NewID()
		}
		if it.Fields[i].Type == "" {
			it.Fields[i].Type = "STRING"
		}
	}
	for i := range it.Files {
		if it.Files[i].ID == "" {
			it.Files[i].ID = NewID()
		}
	}
	v.Items = append(v.Items, it)
	return it
}

// FailNext makes the next len(statuses) API requests answer with those
// statuses (429 for rate limiting, 500...) before serving normally again.
func (s *Server) FailNext(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = append(s.failNext, statuses...)
}

// SetDelay makes every API request wait d before answering (a slow or
// hanging Connect server).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Requests returns the API requests served so far, "METHOD PATH?QUERY".
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// ErrorBody is Connect's error response.
type ErrorBody struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, ErrorBody{Status: status, Message: fmt.Sprintf(format, args...)})
}

var filterRE = regexp.MustCompile(`^\s*(\w+)\s+eq\s+"([^"]*)"\s*$`)

// parseFilter reads the SCIM "ATTR eq "VALUE"" filters Connect accepts.
func parseFilter(f string, attrs ...string) (value string, ok bool) {
	m := filterRE.FindStringSubmatch(f)
	if m == nil {
		return "", false
	}
	for _, a := range attrs {
		if m[1] == a {
			return m[2], true
		}
	}
	return "", false
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("1Password-Connect-Version", Version)
	switch r.URL.Path {
	case "/heartbeat":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("."))
		return
	case "/health":
		writeJSON(w, http.StatusOK, map[string]any{"name": "1Password Connect API", "version": Version})
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
	delay := s.delay
	var injected int
	if len(s.failNext) > 0 {
		injected, s.failNext = s.failNext[0], s.failNext[1:]
	}
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if injected != 0 {
		if injected == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		fail(w, injected, "%s", http.StatusText(injected))
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/v1/") {
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	s.mu.Lock()
	scope, known := s.tokens[token]
	s.mu.Unlock()
	if !ok || !known {
		fail(w, http.StatusUnauthorized, "Invalid token signature")
		return
	}
	if r.Method != http.MethodGet {
		fail(w, http.StatusMethodNotAllowed, "this test server is read-only")
		return
	}
	inScope := func(id string) bool { return scope == nil || scope[id] }

	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/"), "/")
	if parts[0] != "vaults" {
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(parts) == 1 {
		var want string
		var filtered bool
		if f := r.URL.Query().Get("filter"); f != "" {
			if want, filtered = parseFilter(f, "title", "name"); !filtered {
				fail(w, http.StatusBadRequest, "Invalid filter: %s", f)
				return
			}
		}
		out := []vaultJSON{}
		for _, v := range s.vaults {
			if inScope(v.ID) && (!filtered || v.Name == want) {
				out = append(out, v.json())
			}
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	var vault *Vault
	for _, v := range s.vaults {
		if v.ID == parts[1] {
			vault = v
		}
	}
	if vault == nil {
		fail(w, http.StatusNotFound, "vault %s not found", parts[1])
		return
	}
	if !inScope(vault.ID) {
		fail(w, http.StatusForbidden, "vault %s is not in scope", vault.ID)
		return
	}
	switch {
	case len(parts) == 2:
		writeJSON(w, http.StatusOK, vault.json())
	case len(parts) == 3 && parts[2] == "items":
		var want string
		var filtered bool
		if f := r.URL.Query().Get("filter"); f != "" {
			if want, filtered = parseFilter(f, "title"); !filtered {
				fail(w, http.StatusBadRequest, "Invalid filter: %s", f)
				return
			}
		}
		out := []itemJSON{}
		for _, it := range vault.Items {
			if !filtered || it.Title == want {
				out = append(out, it.summary(vault))
			}
		}
		writeJSON(w, http.StatusOK, out)
	case len(parts) >= 4 && parts[2] == "items":
		var item *Item
		for _, it := range vault.Items {
			if it.ID == parts[3] {
				item = it
			}
		}
		if item == nil {
			fail(w, http.StatusNotFound, "item %s not found", parts[3])
			return
		}
		switch {
		case len(parts) == 4:
			writeJSON(w, http.StatusOK, item.full(vault))
		case len(parts) == 7 && parts[4] == "files" && parts[6] == "content":
			for _, f := range item.Files {
				if f.ID == parts[5] {
					w.Header().Set("Content-Type", "application/octet-stream")
					w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", f.Name))
					_, _ = w.Write(f.Content)
					return
				}
			}
			fail(w, http.StatusNotFound, "file %s not found", parts[5])
		default:
			fail(w, http.StatusNotFound, "Not Found")
		}
	default:
		fail(w, http.StatusNotFound, "Not Found")
	}
}

// The JSON shapes of the Connect API's Vault, Item and FullItem schemas.
type vaultJSON struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	AttrVersion    int       `json:"attributeVersion"`
	ContentVersion int       `json:"contentVersion"`
	Items          int       `json:"items"`
	Type           string    `json:"type"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
}

type idJSON struct {
	ID string `json:"id"`
}

type sectionJSON struct {
	ID    string `json:"id"`
	Label string `json:"label,omitempty"`
}

type fieldJSON struct {
	ID      string  `json:"id"`
	Section *idJSON `json:"section,omitempty"`
	Type    string  `json:"type"`
	Purpose string  `json:"purpose,omitempty"`
	Label   string  `json:"label,omitempty"`
	Value   string  `json:"value,omitempty"`
}

type fileJSON struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Size        int     `json:"size"`
	ContentPath string  `json:"content_path"`
	Section     *idJSON `json:"section,omitempty"`
}

type itemJSON struct {
	ID        string        `json:"id"`
	Title     string        `json:"title"`
	Vault     idJSON        `json:"vault"`
	Category  string        `json:"category"`
	Version   int           `json:"version"`
	CreatedAt time.Time     `json:"createdAt"`
	UpdatedAt time.Time     `json:"updatedAt"`
	Sections  []sectionJSON `json:"sections,omitempty"`
	Fields    []fieldJSON   `json:"fields,omitempty"`
	Files     []fileJSON    `json:"files,omitempty"`
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (v *Vault) json() vaultJSON {
	return vaultJSON{ID: v.ID, Name: v.Name, AttrVersion: 1, ContentVersion: len(v.Items) + 1, Items: len(v.Items),
		Type: "USER_CREATED", CreatedAt: epoch, UpdatedAt: epoch}
}

func (it *Item) summary(v *Vault) itemJSON {
	return itemJSON{ID: it.ID, Title: it.Title, Vault: idJSON{v.ID}, Category: it.Category, Version: 1, CreatedAt: epoch, UpdatedAt: epoch}
}

func sectionRef(id string) *idJSON {
	if id == "" {
		return nil
	}
	return &idJSON{id}
}

func (it *Item) full(v *Vault) itemJSON {
	j := it.summary(v)
	for _, s := range it.Sections {
		j.Sections = append(j.Sections, sectionJSON(s))
	}
	for _, f := range it.Fields {
		j.Fields = append(j.Fields, fieldJSON{ID: f.ID, Section: sectionRef(f.SectionID), Type: f.Type, Purpose: f.Purpose, Label: f.Label, Value: f.Value})
	}
	for _, f := range it.Files {
		j.Files = append(j.Files, fileJSON{ID: f.ID, Name: f.Name, Size: len(f.Content), Section: sectionRef(f.SectionID),
			ContentPath: fmt.Sprintf("/v1/vaults/%s/items/%s/files/%s/content", v.ID, it.ID, f.ID)})
	}
	return j
}
