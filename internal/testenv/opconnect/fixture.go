package opconnect

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Fixture is a server's content in JSON, for scripts:
//
//	{"tokens": {"TOKEN": [], "SCOPED": ["Prod"]},
//	 "vaults": [{"name": "Prod", "items": [{"title": "Database",
//	   "sections": ["Admin"],
//	   "fields": [{"label": "password", "type": "CONCEALED", "value": "...", "section": "Admin"}],
//	   "files": [{"name": "ca.pem", "content": "..."}]}]}]}
//
// A token with no vaults listed reads every vault; sections are named by
// label in fields and files.
type Fixture struct {
	Tokens map[string][]string `json:"tokens"`
	Vaults []struct {
		Name  string `json:"name"`
		ID    string `json:"id"` // optional: a fixed id (26 lower-case letters and digits)
		Items []struct {
			ID       string   `json:"id"` // optional, as for a vault
			Title    string   `json:"title"`
			Category string   `json:"category"`
			Sections []string `json:"sections"`
			Fields   []struct {
				Label, Type, Purpose, Value, Section string
			} `json:"fields"`
			Files []struct {
				Name, Content, Section string
			} `json:"files"`
		} `json:"items"`
	} `json:"vaults"`
}

// FromJSON starts a server with a Fixture's content.
func FromJSON(data []byte) (*Server, error) {
	var fx Fixture
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fx); err != nil {
		return nil, fmt.Errorf("opconnect fixture: %w", err)
	}
	if len(fx.Tokens) == 0 {
		return nil, fmt.Errorf("opconnect fixture: no tokens")
	}
	s := New("")
	delete(s.tokens, "")
	byName := map[string]string{}
	for _, fv := range fx.Vaults {
		v := s.AddVault(fv.Name)
		if fv.ID != "" {
			v.ID = fv.ID
		}
		byName[fv.Name] = v.ID
		for _, fi := range fv.Items {
			it := &Item{ID: fi.ID, Title: fi.Title, Category: fi.Category}
			for _, l := range fi.Sections {
				it.Sections = append(it.Sections, Section{ID: NewID(), Label: l})
			}
			sec := func(label string) (string, error) {
				if label == "" {
					return "", nil
				}
				for _, s := range it.Sections {
					if s.Label == label {
						return s.ID, nil
					}
				}
				return "", fmt.Errorf("opconnect fixture: item %q has no section %q", fi.Title, label)
			}
			for _, ff := range fi.Fields {
				id, err := sec(ff.Section)
				if err != nil {
					s.Close()
					return nil, err
				}
				it.Fields = append(it.Fields, Field{Label: ff.Label, Type: ff.Type, Purpose: ff.Purpose, Value: ff.Value, SectionID: id})
			}
			for _, ff := range fi.Files {
				id, err := sec(ff.Section)
				if err != nil {
					s.Close()
					return nil, err
				}
				it.Files = append(it.Files, File{Name: ff.Name, Content: []byte(ff.Content), SectionID: id})
			}
			v.AddItem(it)
		}
	}
	for tok, vaults := range fx.Tokens {
		var ids []string
		for _, n := range vaults {
			id, ok := byName[n]
			if !ok {
				s.Close()
				return nil, fmt.Errorf("opconnect fixture: token scope names unknown vault %q", n)
			}
			ids = append(ids, id)
		}
		s.AddToken(tok, ids...)
	}
	return s, nil
}
