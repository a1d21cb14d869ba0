package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/platform/config"
)

// registryCommands returns the commands that talk to the registry service over HTTP.
func registryCommands(lookup config.LookupFunc) []*cobra.Command {
	return []*cobra.Command{runsCommand(lookup), modelsCommand(lookup)}
}

// escapePath joins path segments, escaping each one.
func escapePath(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteString("/" + url.PathEscape(s))
	}
	return b.String()
}

// collectPages fetches pages until it holds max items (max <= 0: every page) or the registry
// stops returning a next_page_token. fetch gets the page token ("" first) and how many items
// are still wanted (0 when unbounded).
func collectPages(max int, fetch func(token string, want int) ([]json.RawMessage, string, error)) ([]json.RawMessage, error) {
	all := []json.RawMessage{}
	token := ""
	for {
		want := 0
		if max > 0 {
			want = max - len(all)
		}
		items, next, err := fetch(token, want)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		// An empty page or a repeated token would otherwise loop forever.
		if (max > 0 && len(all) >= max) || next == "" || next == token || len(items) == 0 {
			break
		}
		token = next
	}
	if max > 0 && len(all) > max {
		all = all[:max]
	}
	return all, nil
}

// wireTime decodes the registry's timestamps: MLflow's milliseconds since the epoch (a number,
// or a string as some protobuf JSON encoders send int64) and /v1's RFC 3339 strings.
type wireTime struct{ time.Time }

func (t *wireTime) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		t.Time = time.Time{}
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			t.Time = time.Time{}
			return nil
		}
		if parsed, err := time.Parse(time.RFC3339Nano, s); err == nil {
			t.Time = parsed
			return nil
		}
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %s: want milliseconds or RFC 3339", b)
	}
	t.Time = time.Time{}
	if ms > 0 {
		t.Time = time.UnixMilli(ms)
	}
	return nil
}

// String is RFC 3339 in UTC, or "-" when unset.
func (t wireTime) String() string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// wireString decodes a value MLflow sends as a string but others may send as a number
// (model version numbers).
type wireString string

func (s *wireString) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*s = ""
	case strings.HasPrefix(string(b), `"`):
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = wireString(v)
	default:
		*s = wireString(b)
	}
	return nil
}

// wireFloat decodes a metric value, including the "NaN" and "Infinity" strings protobuf JSON
// uses for non-finite numbers.
type wireFloat float64

func (f *wireFloat) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" {
		*f = 0
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("metric value %s: %w", b, err)
	}
	*f = wireFloat(v)
	return nil
}

// compact formats to 4 significant digits, for list tables.
func (f wireFloat) compact() string { return strconv.FormatFloat(float64(f), 'g', 4, 64) }

// String formats exactly.
func (f wireFloat) String() string { return strconv.FormatFloat(float64(f), 'g', -1, 64) }

// keyValue is an MLflow param, tag or dataset-input tag.
type keyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}
