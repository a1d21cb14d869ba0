package validate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/flywheel-ml/flywheel/services/ingest/catalog"
)

// Reason explains one rejection. Pointer is the JSON pointer of the offending value ("" for
// the whole event); Keyword is a short, low-cardinality name of the broken rule, for
// statistics; Message is for people.
type Reason struct {
	Pointer string
	Keyword string
	Message string
}

func (r Reason) String() string { return pointerOrRoot(r.Pointer) + ": " + r.Message }

// Key is the reason without values, for counting rejections by cause.
func (r Reason) Key() string { return pointerOrRoot(r.Pointer) + ": " + r.Keyword }

func pointerOrRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// Event is a validated event.
type Event struct {
	ID        string
	Entity    string
	Time      time.Time
	Raw       []byte // the original object bytes, exactly
	IDDerived bool
}

// Config bounds what an event may be.
type Config struct {
	MaxFutureSkew time.Duration // event times later than now+skew are rejected
	MaxDepth      int           // deepest nesting of objects and arrays
	MaxReasons    int           // reasons reported per event
	// NoFastPath sends every event through the full JSON Schema validator (for tests that
	// check the fast path agrees with it).
	NoFastPath bool
}

// Validator checks events against their stream. It is safe for concurrent use.
type Validator struct {
	cfg     Config
	now     func() time.Time
	printer *message.Printer
}

// New returns a validator; now is the clock (time.Now in production).
func New(cfg Config, now func() time.Time) *Validator {
	if cfg.MaxDepth <= 0 {
		cfg.MaxDepth = 32
	}
	if cfg.MaxReasons <= 0 {
		cfg.MaxReasons = 20
	}
	return &Validator{cfg: cfg, now: now, printer: message.NewPrinter(language.English)}
}

// Validate checks one item of stream s and returns the event, or the reasons it is rejected.
func (v *Validator) Validate(s *catalog.Stream, raw []byte) (Event, []Reason) {
	if depthExceeds(raw, v.cfg.MaxDepth) {
		return Event{}, []Reason{{Keyword: "depth", Message: fmt.Sprintf("nested deeper than %d levels", v.cfg.MaxDepth)}}
	}
	if s.Plan != nil && !v.cfg.NoFastPath {
		if fields, ok := fastValidate(s.Plan, raw); ok {
			return v.envelope(s, fields, raw)
		}
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return Event{}, []Reason{{Keyword: "json", Message: "not valid JSON: " + decodeMessage(err)}}
	}
	if err := s.Schema.Validate(doc); err != nil {
		if ve, ok := err.(*jsonschema.ValidationError); ok {
			return Event{}, v.schemaReasons(ve)
		}
		return Event{}, []Reason{{Keyword: "schema", Message: err.Error()}}
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return Event{}, []Reason{{Keyword: "type", Message: "an event must be a JSON object"}}
	}
	return v.envelope(s, obj, raw)
}

// envelope applies the envelope rules to a schema-valid event's top-level fields.
func (v *Validator) envelope(s *catalog.Stream, obj map[string]any, raw []byte) (Event, []Reason) {
	ev := Event{Raw: raw}
	var reasons []Reason
	var r *Reason
	if ev.ID, ev.IDDerived, r = eventID(s.Meta.EventID, obj, raw); r != nil {
		reasons = append(reasons, *r)
	}
	if ev.Entity, r = scalarField(obj, s.Meta.Entity, "entity"); r != nil {
		reasons = append(reasons, *r)
	}
	if ev.Time, r = v.eventTime(obj, s.Meta.EventTime); r != nil {
		reasons = append(reasons, *r)
	}
	if len(reasons) > 0 {
		return Event{}, reasons
	}
	return ev, nil
}

func eventID(spec catalog.EventID, obj map[string]any, raw []byte) (string, bool, *Reason) {
	if len(spec.Fields) == 1 {
		id, r := scalarField(obj, spec.Fields[0], "event_id")
		if r == nil {
			return id + spec.Suffix, false, nil
		}
		if !spec.Derive {
			return "", false, r
		}
	} else if len(spec.Fields) > 1 {
		parts := make([]string, 0, len(spec.Fields))
		var missing *Reason
		for _, f := range spec.Fields {
			p, r := scalarField(obj, f, "event_id")
			if r != nil {
				missing = r
				break
			}
			parts = append(parts, p)
		}
		if missing == nil {
			return strings.Join(parts, ":") + spec.Suffix, false, nil
		}
		if !spec.Derive {
			return "", false, missing
		}
	}
	// Derived ids hash the RFC 8785 canonical form, so key order and spacing do not matter.
	canonical := jsontext.Value(raw).Clone()
	if err := canonical.Canonicalize(); err != nil {
		return "", false, &Reason{Keyword: "event_id", Message: "cannot derive an event id: " + err.Error()}
	}
	sum := sha256.Sum256(canonical)
	return "sha256:" + hex.EncodeToString(sum[:16]), true, nil
}

// scalarField reads a top-level string or integral number as text.
func scalarField(obj map[string]any, field, role string) (string, *Reason) {
	ptr := "/" + escapePointer(field)
	switch x := obj[field].(type) {
	case string:
		if x == "" {
			return "", &Reason{Pointer: ptr, Keyword: role, Message: role + " field is empty"}
		}
		return x, nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return "", &Reason{Pointer: ptr, Keyword: role, Message: role + " field must be a string or an integer"}
		}
		return strconv.FormatInt(int64(x), 10), nil
	case nil:
		return "", &Reason{Pointer: ptr, Keyword: role, Message: role + " field is missing"}
	default:
		return "", &Reason{Pointer: ptr, Keyword: role, Message: role + " field must be a string or an integer"}
	}
}

var (
	minEventTime = time.Unix(0, 0).UTC()
	maxEventTime = time.Date(2106, 1, 1, 0, 0, 0, 0, time.UTC)
)

func (v *Validator) eventTime(obj map[string]any, field string) (time.Time, *Reason) {
	ptr := "/" + escapePointer(field)
	var t time.Time
	switch x := obj[field].(type) {
	case string:
		parsed, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return t, &Reason{Pointer: ptr, Keyword: "event_time", Message: fmt.Sprintf("%q is not an RFC 3339 timestamp", x)}
		}
		t = parsed.UTC()
	case float64:
		if x != math.Trunc(x) || x < 0 || x > 1<<53 {
			return t, &Reason{Pointer: ptr, Keyword: "event_time", Message: "epoch milliseconds must be a non-negative integer"}
		}
		t = time.UnixMilli(int64(x)).UTC()
	case nil:
		return t, &Reason{Pointer: ptr, Keyword: "event_time", Message: "event time field is missing"}
	default:
		return t, &Reason{Pointer: ptr, Keyword: "event_time", Message: "must be an RFC 3339 string or epoch milliseconds"}
	}
	// ClickHouse DateTime (and so the offline store) holds 1970-01-01 to 2105.
	if t.Before(minEventTime) || !t.Before(maxEventTime) {
		return time.Time{}, &Reason{Pointer: ptr, Keyword: "range", Message: fmt.Sprintf("%s is outside 1970-01-01 to 2105-12-31",
			t.Format(time.RFC3339))}
	}
	if limit := v.now().Add(v.cfg.MaxFutureSkew); t.After(limit) {
		return time.Time{}, &Reason{Pointer: ptr, Keyword: "future", Message: fmt.Sprintf("%s is %s in the future; the limit is %s",
			t.Format(time.RFC3339), t.Sub(v.now()).Round(time.Second), v.cfg.MaxFutureSkew)}
	}
	return t, nil
}

func (v *Validator) schemaReasons(ve *jsonschema.ValidationError) []Reason {
	var out []Reason
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(out) >= v.cfg.MaxReasons {
			return
		}
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		ptr := pointer(e.InstanceLocation)
		switch k := e.ErrorKind.(type) {
		case *kind.Required:
			for _, f := range k.Missing {
				out = append(out, Reason{Pointer: ptr + "/" + escapePointer(f), Keyword: "required", Message: "required field is missing"})
			}
		case *kind.AdditionalProperties:
			for _, f := range k.Properties {
				out = append(out, Reason{Pointer: ptr + "/" + escapePointer(f), Keyword: "additionalProperties", Message: "field is not allowed by the schema"})
			}
		case *kind.Enum:
			msg := fmt.Sprintf("%s is not one of the %d allowed values", shortValue(k.Got), len(k.Want))
			if len(k.Want) <= 8 {
				vals := make([]string, len(k.Want))
				for i, w := range k.Want {
					vals[i] = shortValue(w)
				}
				msg = fmt.Sprintf("must be one of %s, got %s", strings.Join(vals, ", "), shortValue(k.Got))
			}
			out = append(out, Reason{Pointer: ptr, Keyword: "enum", Message: msg})
		case *kind.Minimum:
			out = append(out, Reason{Pointer: ptr, Keyword: "minimum", Message: "must be >= " + rat(k.Want) + ", got " + rat(k.Got)})
		case *kind.Maximum:
			out = append(out, Reason{Pointer: ptr, Keyword: "maximum", Message: "must be <= " + rat(k.Want) + ", got " + rat(k.Got)})
		case *kind.ExclusiveMinimum:
			out = append(out, Reason{Pointer: ptr, Keyword: "exclusiveMinimum", Message: "must be > " + rat(k.Want) + ", got " + rat(k.Got)})
		case *kind.ExclusiveMaximum:
			out = append(out, Reason{Pointer: ptr, Keyword: "exclusiveMaximum", Message: "must be < " + rat(k.Want) + ", got " + rat(k.Got)})
		case *kind.MinLength:
			out = append(out, Reason{Pointer: ptr, Keyword: "minLength", Message: fmt.Sprintf("length must be >= %d, got %d", k.Want, k.Got)})
		case *kind.MaxLength:
			out = append(out, Reason{Pointer: ptr, Keyword: "maxLength", Message: fmt.Sprintf("length must be <= %d, got %d", k.Want, k.Got)})
		case *kind.MinItems:
			out = append(out, Reason{Pointer: ptr, Keyword: "minItems", Message: fmt.Sprintf("must have at least %d items, got %d", k.Want, k.Got)})
		case *kind.MaxItems:
			out = append(out, Reason{Pointer: ptr, Keyword: "maxItems", Message: fmt.Sprintf("must have at most %d items, got %d", k.Want, k.Got)})
		case *kind.Type:
			out = append(out, Reason{Pointer: ptr, Keyword: "type", Message: fmt.Sprintf("must be %s, got %s", strings.Join(k.Want, " or "), k.Got)})
		case *kind.Pattern:
			out = append(out, Reason{Pointer: ptr, Keyword: "pattern", Message: fmt.Sprintf("must match %q", k.Want)})
		case *kind.Format:
			out = append(out, Reason{Pointer: ptr, Keyword: "format", Message: fmt.Sprintf("%s is not a valid %s", shortValue(k.Got), k.Want)})
		default:
			kw := "schema"
			if path := e.ErrorKind.KeywordPath(); len(path) > 0 {
				kw = path[len(path)-1]
			}
			out = append(out, Reason{Pointer: ptr, Keyword: kw, Message: e.ErrorKind.LocalizedString(v.printer)})
		}
	}
	walk(ve)
	// The validator visits properties in map order; sort so the same event always gets the
	// same reasons in the same order (and the same first reason in the statistics).
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pointer < out[j].Pointer })
	if len(out) > v.cfg.MaxReasons {
		out = out[:v.cfg.MaxReasons]
	}
	return out
}

func rat(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func shortValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	if len(b) > 40 {
		return string(b[:37]) + "..."
	}
	return string(b)
}

func pointer(tokens []string) string {
	var sb strings.Builder
	for _, t := range tokens {
		sb.WriteByte('/')
		sb.WriteString(escapePointer(t))
	}
	return sb.String()
}

func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// decodeMessage shortens decoder errors to what a sender can act on.
func decodeMessage(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	msg = strings.TrimPrefix(msg, "jsontext: ")
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return msg
}
