// Package catalog loads the stream catalog: one JSON Schema (draft 2020-12) per stream with
// Flywheel's metadata under "x-flywheel" (schema version, event-id, entity and event-time
// fields), compiled once for validation.
package catalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Meta is a stream's envelope rules.
type Meta struct {
	Version   int     `json:"version"`
	EventID   EventID `json:"event_id"`
	Entity    string  `json:"entity"`
	EventTime string  `json:"event_time"`
}

// EventID says how an event's id is found: the named top-level fields joined with ":" plus
// Suffix, or, when Derive is set and the fields are absent, the SHA-256 of the canonical
// payload.
type EventID struct {
	Fields []string `json:"fields"`
	Suffix string   `json:"suffix,omitempty"`
	Derive bool     `json:"derive,omitempty"`
}

// Stream is one compiled stream definition.
type Stream struct {
	Name        string
	Meta        Meta
	Fingerprint string          // SHA-256 of the schema file's canonical JSON
	Raw         json.RawMessage // the schema document as shipped
	Schema      *jsonschema.Schema
	Plan        *Plan // nil when the schema uses keywords the fast path does not cover
}

// Catalog is the set of streams, by name.
type Catalog struct {
	streams map[string]*Stream
	names   []string
}

var streamName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Load compiles every <stream>.json in fsys.
func Load(fsys fs.FS) (*Catalog, error) {
	files, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, errors.New("no stream schemas (*.json) found")
	}
	c := &Catalog{streams: map[string]*Stream{}}
	for _, f := range files {
		raw, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		s, err := Compile(strings.TrimSuffix(path.Base(f), ".json"), raw)
		if err != nil {
			return nil, err
		}
		c.streams[s.Name] = s
		c.names = append(c.names, s.Name)
	}
	sort.Strings(c.names)
	return c, nil
}

// Compile checks and compiles one stream's schema document.
func Compile(name string, raw []byte) (*Stream, error) {
	if !streamName.MatchString(name) {
		return nil, fmt.Errorf("stream %q: names are lower-case letters, digits and _, starting with a letter", name)
	}
	var head struct {
		Meta *Meta `json:"x-flywheel"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("stream %s: schema is not valid JSON: %w", name, err)
	}
	if head.Meta == nil {
		return nil, fmt.Errorf("stream %s: schema lacks the x-flywheel metadata (version, event_id, entity, event_time)", name)
	}
	m := *head.Meta
	switch {
	case m.Version < 1:
		return nil, fmt.Errorf("stream %s: x-flywheel.version must be at least 1", name)
	case len(m.EventID.Fields) == 0 && !m.EventID.Derive:
		return nil, fmt.Errorf("stream %s: x-flywheel.event_id needs fields, or derive: true", name)
	case m.Entity == "":
		return nil, fmt.Errorf("stream %s: x-flywheel.entity names no field", name)
	case m.EventTime == "":
		return nil, fmt.Errorf("stream %s: x-flywheel.event_time names no field", name)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	compiler := jsonschema.NewCompiler()
	compiler.DefaultDraft(jsonschema.Draft2020)
	compiler.AssertFormat()
	url := "flywheel://streams/" + name + ".json"
	if err := compiler.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	schema, err := compiler.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("stream %s: schema does not compile: %w", name, err)
	}
	canonical, err := json.Marshal(doc) // map keys sorted: formatting changes keep the fingerprint
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(canonical)
	return &Stream{Name: name, Meta: m, Fingerprint: hex.EncodeToString(sum[:]), Raw: raw, Schema: schema,
		Plan: compilePlan(raw, m)}, nil
}

// Get returns the named stream.
func (c *Catalog) Get(name string) (*Stream, bool) {
	s, ok := c.streams[name]
	return s, ok
}

// Names lists the streams, sorted.
func (c *Catalog) Names() []string { return c.names }

// Streams lists the streams, sorted by name.
func (c *Catalog) Streams() []*Stream {
	out := make([]*Stream, len(c.names))
	for i, n := range c.names {
		out[i] = c.streams[n]
	}
	return out
}
