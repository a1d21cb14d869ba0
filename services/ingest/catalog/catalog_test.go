package catalog_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/ingest/catalog"
)

func TestShippedCatalog(t *testing.T) {
	c, err := catalog.Load(schemas.Streams())
	if err != nil {
		t.Fatal(err)
	}
	tx, ok := c.Get("transactions")
	if !ok || tx.Meta.Entity != "card_id" || tx.Meta.EventID.Fields[0] != "transaction_id" || tx.Meta.Version != 1 {
		t.Fatalf("transactions: %+v", tx)
	}
	labels, ok := c.Get("fraud_labels")
	if !ok || labels.Meta.EventID.Suffix != ":label" {
		t.Fatalf("fraud_labels: %+v", labels)
	}
}

const base = `{
 "x-flywheel": {"version": 1, "event_id": {"fields": ["id"]}, "entity": "user", "event_time": "ts"},
 "type": "object", "required": ["id", "user", "ts", "kind"], "additionalProperties": false,
 "properties": {
  "id": {"type": "string"}, "user": {"type": "string"}, "ts": {"type": ["string", "integer"]},
  "kind": {"enum": ["a", "b"]}, "amount": {"type": "integer", "minimum": 0},
  "tags": {"type": "array", "items": {"type": "string"}}
 }
}`

// mutate applies edits (JSON merge of top-level keys) to the base schema.
func mutate(t *testing.T, edit func(m map[string]any)) *catalog.Stream {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(base), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	raw, _ := json.Marshal(m)
	s, err := catalog.Compile("users", raw)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func props(m map[string]any) map[string]any { return m["properties"].(map[string]any) }
func bump(m map[string]any)                 { m["x-flywheel"].(map[string]any)["version"] = 2 }

func TestIncompatibilities(t *testing.T) {
	deployed := mutate(t, func(map[string]any) {})
	cases := []struct {
		name string
		edit func(m map[string]any)
		want string // "" means compatible
	}{
		{"reformatted only", func(map[string]any) {}, ""},
		{"optional field added", func(m map[string]any) { bump(m); props(m)["note"] = map[string]any{"type": "string"} }, ""},
		{"enum widened", func(m map[string]any) { bump(m); props(m)["kind"] = map[string]any{"enum": []any{"a", "b", "c"}} }, ""},
		{"integer widened to number", func(m map[string]any) { bump(m); props(m)["amount"] = map[string]any{"type": "number", "minimum": 0} }, ""},
		{"changed without bump", func(m map[string]any) { props(m)["note"] = map[string]any{"type": "string"} }, "bump it above the deployed 1"},
		{"required field removed", func(m map[string]any) { bump(m); m["required"] = []any{"id", "user", "ts"} }, "removed required field /kind"},
		{"required field added", func(m map[string]any) { bump(m); m["required"] = []any{"id", "user", "ts", "kind", "amount"} }, "added required field /amount"},
		{"required field retyped", func(m map[string]any) { bump(m); props(m)["user"] = map[string]any{"type": "integer"} }, "retyped /user"},
		{"enum narrowed", func(m map[string]any) { bump(m); props(m)["kind"] = map[string]any{"enum": []any{"a"}} }, "narrowed enum /kind: removed b"},
		{"minimum raised", func(m map[string]any) { bump(m); props(m)["amount"] = map[string]any{"type": "integer", "minimum": 1} }, "minimum raised"},
		{"items retyped", func(m map[string]any) {
			bump(m)
			props(m)["tags"] = map[string]any{"type": "array", "items": map[string]any{"type": "integer"}}
		}, "retyped /tags/items"},
		{"entity changed", func(m map[string]any) { bump(m); m["x-flywheel"].(map[string]any)["entity"] = "id" }, "x-flywheel.entity changed"},
	}
	for _, tc := range cases {
		got := catalog.Incompatibilities(deployed, mutate(t, tc.edit))
		joined := strings.Join(got, "; ")
		if tc.want == "" && len(got) > 0 {
			t.Errorf("%s: want compatible, got %s", tc.name, joined)
		}
		if tc.want != "" && !strings.Contains(joined, tc.want) {
			t.Errorf("%s: want %q, got %q", tc.name, tc.want, joined)
		}
	}
}

func TestCompileRejectsBadDefinitions(t *testing.T) {
	for name, doc := range map[string]string{
		"no meta":     `{"type":"object"}`,
		"no entity":   `{"x-flywheel":{"version":1,"event_id":{"fields":["id"]},"event_time":"ts"}}`,
		"bad schema":  `{"x-flywheel":{"version":1,"event_id":{"fields":["id"]},"entity":"u","event_time":"ts"},"type":"objekt"}`,
		"not json":    `{`,
		"no event id": `{"x-flywheel":{"version":1,"entity":"u","event_time":"ts"}}`,
	} {
		if _, err := catalog.Compile("s", []byte(doc)); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if _, err := catalog.Compile("Bad-Name", []byte(base)); err == nil {
		t.Error("want an error for a bad stream name")
	}
}
