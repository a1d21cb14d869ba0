package catalog

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
)

// Incompatibilities lists why next may not replace deployed: changes that would reject events
// the deployed schema accepts, or that take away fields consumers rely on. Adding optional
// fields, widening types, ranges and enums is compatible. An empty list means next may be
// deployed (it must still carry a higher version when it differs).
func Incompatibilities(deployed, next *Stream) []string {
	if deployed.Fingerprint == next.Fingerprint {
		return nil
	}
	var out []string
	if next.Meta.Version <= deployed.Meta.Version {
		out = append(out, fmt.Sprintf("schema changed but x-flywheel.version is %d; bump it above the deployed %d",
			next.Meta.Version, deployed.Meta.Version))
	}
	if !slices.Equal(deployed.Meta.EventID.Fields, next.Meta.EventID.Fields) || deployed.Meta.EventID.Suffix != next.Meta.EventID.Suffix ||
		deployed.Meta.EventID.Derive != next.Meta.EventID.Derive {
		out = append(out, "x-flywheel.event_id changed: event ids would no longer match earlier events, breaking dedupe")
	}
	if deployed.Meta.Entity != next.Meta.Entity {
		out = append(out, fmt.Sprintf("x-flywheel.entity changed from %q to %q", deployed.Meta.Entity, next.Meta.Entity))
	}
	if deployed.Meta.EventTime != next.Meta.EventTime {
		out = append(out, fmt.Sprintf("x-flywheel.event_time changed from %q to %q", deployed.Meta.EventTime, next.Meta.EventTime))
	}
	var a, b map[string]any
	if json.Unmarshal(deployed.Raw, &a) != nil || json.Unmarshal(next.Raw, &b) != nil {
		return append(out, "a schema is not a JSON object")
	}
	return append(out, compareSchemas("", a, b)...)
}

func compareSchemas(ptr string, old, nu map[string]any) []string {
	var out []string
	at := ptr
	if at == "" {
		at = "/"
	}
	// Types: every type the old schema accepted must still be accepted.
	oldTypes, newTypes := types(old), types(nu)
	if len(newTypes) > 0 {
		if len(oldTypes) == 0 {
			out = append(out, fmt.Sprintf("retyped %s: any type → %v", at, newTypes))
		} else {
			for _, t := range oldTypes {
				if !slices.Contains(newTypes, t) && !(t == "integer" && slices.Contains(newTypes, "number")) {
					out = append(out, fmt.Sprintf("retyped %s: %v → %v", at, oldTypes, newTypes))
					break
				}
			}
		}
	}
	// Enums may grow, never shrink.
	if newEnum, ok := nu["enum"].([]any); ok {
		oldEnum, had := old["enum"].([]any)
		if !had {
			out = append(out, fmt.Sprintf("narrowed %s: an enum was added", at))
		} else {
			for _, v := range oldEnum {
				if !slices.ContainsFunc(newEnum, func(w any) bool { return reflect.DeepEqual(v, w) }) {
					out = append(out, fmt.Sprintf("narrowed enum %s: removed %v", at, v))
				}
			}
		}
	}
	if !reflect.DeepEqual(old["const"], nu["const"]) && nu["const"] != nil {
		out = append(out, fmt.Sprintf("narrowed %s: const changed", at))
	}
	// Bounds may widen, never narrow.
	for _, k := range []string{"minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"} {
		if n, ok := nu[k].(float64); ok {
			if o, had := old[k].(float64); !had || n > o {
				out = append(out, fmt.Sprintf("narrowed %s: %s raised to %v", at, k, n))
			}
		}
	}
	for _, k := range []string{"maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"} {
		if n, ok := nu[k].(float64); ok {
			if o, had := old[k].(float64); !had || n < o {
				out = append(out, fmt.Sprintf("narrowed %s: %s lowered to %v", at, k, n))
			}
		}
	}
	if p, ok := nu["pattern"]; ok && !reflect.DeepEqual(p, old["pattern"]) {
		out = append(out, fmt.Sprintf("narrowed %s: pattern changed to %v", at, p))
	}
	if f, ok := nu["format"]; ok && !reflect.DeepEqual(f, old["format"]) {
		out = append(out, fmt.Sprintf("narrowed %s: format changed to %v", at, f))
	}
	if nu["additionalProperties"] == false && old["additionalProperties"] != false {
		out = append(out, fmt.Sprintf("narrowed %s: additional properties are no longer allowed", at))
	}
	// Required fields: none may disappear (consumers rely on them), none may be added
	// (events from existing producers would be rejected).
	oldReq, newReq := stringSet(old["required"]), stringSet(nu["required"])
	for _, f := range sortedKeys(oldReq) {
		if !newReq[f] {
			out = append(out, fmt.Sprintf("removed required field %s/%s", ptr, f))
		}
	}
	for _, f := range sortedKeys(newReq) {
		if !oldReq[f] {
			out = append(out, fmt.Sprintf("added required field %s/%s: events from existing producers would be rejected", ptr, f))
		}
	}
	oldProps, _ := old["properties"].(map[string]any)
	newProps, _ := nu["properties"].(map[string]any)
	for _, name := range sortedKeys(oldProps) {
		op, _ := oldProps[name].(map[string]any)
		np, present := newProps[name].(map[string]any)
		if !present {
			if !oldReq[name] && nu["additionalProperties"] == false {
				out = append(out, fmt.Sprintf("removed field %s/%s while additional properties are not allowed", ptr, name))
			}
			continue
		}
		out = append(out, compareSchemas(ptr+"/"+name, op, np)...)
	}
	if oi, ok := old["items"].(map[string]any); ok {
		if ni, ok := nu["items"].(map[string]any); ok {
			out = append(out, compareSchemas(ptr+"/items", oi, ni)...)
		}
	}
	return out
}

func types(s map[string]any) []string {
	switch t := s["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, v := range t {
			if str, ok := v.(string); ok {
				out = append(out, str)
			}
		}
		sort.Strings(out)
		return out
	}
	return nil
}

func stringSet(v any) map[string]bool {
	out := map[string]bool{}
	if arr, ok := v.([]any); ok {
		for _, x := range arr {
			if s, ok := x.(string); ok {
				out[s] = true
			}
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
