package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/platform/config"
)

// Environment variables and defaults of the registry commands (`runs`, `models`).
const (
	registryURLEnv     = "FLYWHEEL_REGISTRY_URL"
	registryTokenEnv   = "FLYWHEEL_TOKEN"
	defaultRegistryURL = "http://127.0.0.1:8083"

	maxRegistryBody      = 64 << 20 // largest success body read
	maxRegistryErrorBody = 64 << 10 // largest error body read
)

// registryCommands returns the commands that talk to the registry service over HTTP.
func registryCommands(lookup config.LookupFunc) []*cobra.Command {
	return []*cobra.Command{runsCommand(lookup), modelsCommand(lookup)}
}

// RegistryError is a non-2xx answer from the registry. It is decoded from either error shape
// the registry uses: MLflow routes answer {"error_code":"...","message":"..."} and /v1 routes
// {"error":{"code":"...","message":"..."}}. Code is empty when the body was neither.
type RegistryError struct {
	Status  int
	Code    string
	Message string
}

func (e *RegistryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "registry: %d", e.Status)
	if code := e.Code; code != "" {
		b.WriteString(" " + code)
	} else if text := http.StatusText(e.Status); text != "" {
		b.WriteString(" " + text)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// decodeRegistryError reads either error shape from body, falling back to a prefix of the
// raw body (a proxy's HTML page, say).
func decodeRegistryError(status int, body []byte) *RegistryError {
	e := &RegistryError{Status: status}
	var doc struct {
		ErrorCode string          `json:"error_code"`
		Message   string          `json:"message"`
		Error     json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &doc) == nil {
		e.Code, e.Message = doc.ErrorCode, doc.Message
		var detail struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		var text string
		switch {
		case len(doc.Error) == 0:
		case json.Unmarshal(doc.Error, &detail) == nil:
			e.Code = cmp.Or(detail.Code, e.Code)
			e.Message = cmp.Or(detail.Message, e.Message)
		case json.Unmarshal(doc.Error, &text) == nil:
			e.Message = cmp.Or(text, e.Message)
		}
	}
	if e.Code == "" && e.Message == "" {
		e.Message = truncate(strings.Join(strings.Fields(string(body)), " "), 200)
	}
	return e
}

// registryOptions are the flags shared by every registry command, registered as persistent
// flags on `runs` and `models`. An empty URL or token falls back to the environment when the
// command runs, so tokens never appear in --help.
type registryOptions struct {
	url     string
	token   string
	timeout time.Duration
	output  outputFormat
}

func (o *registryOptions) addFlags(cmd *cobra.Command) {
	o.output = outputTable
	f := cmd.PersistentFlags()
	f.StringVar(&o.url, "registry-url", "", "registry base URL (default $"+registryURLEnv+", else "+defaultRegistryURL+")")
	f.StringVar(&o.token, "token", "", "bearer token (default $"+registryTokenEnv+")")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "timeout of each request to the registry")
	f.VarP(&o.output, "output", "o", "output format: table or json")
}

// client builds the registry client from the flags, then the environment, then defaults.
func (o *registryOptions) client(lookup config.LookupFunc) (*registryClient, error) {
	env := func(name string) string {
		if lookup == nil {
			return ""
		}
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	base, source := o.url, "--registry-url"
	if base == "" {
		base, source = env(registryURLEnv), registryURLEnv
	}
	if base == "" {
		base = defaultRegistryURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("%s %q: want an http(s)://host:port base URL", source, base)
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("--timeout must be positive, got %s", o.timeout)
	}
	token := o.token
	if token == "" {
		token = env(registryTokenEnv)
	}
	return &registryClient{
		base:  strings.TrimRight(base, "/"),
		token: token,
		http:  &http.Client{Timeout: o.timeout},
		hint:  "set --registry-url or " + registryURLEnv,
	}, nil
}

// registryClient is a small JSON-over-HTTP client of the registry. It is safe for concurrent
// use; every request is bounded by the http.Client timeout and by ctx.
type registryClient struct {
	base  string // no trailing slash
	token string
	http  *http.Client
	hint  string // how to point the client elsewhere, for connection errors
	extra http.Header
}

// withHeader returns a copy of c that also sends the header.
func (c *registryClient) withHeader(name, value string) *registryClient {
	cc := *c
	cc.extra = c.extra.Clone()
	if cc.extra == nil {
		cc.extra = http.Header{}
	}
	cc.extra.Set(name, value)
	return &cc
}

// escapePath joins path segments, escaping each one.
func escapePath(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteString("/" + url.PathEscape(s))
	}
	return b.String()
}

func (c *registryClient) get(ctx context.Context, path string, query url.Values, out any) error {
	return c.do(ctx, http.MethodGet, path, query, nil, out)
}

func (c *registryClient) post(ctx context.Context, path string, body, out any) error {
	return c.do(ctx, http.MethodPost, path, nil, body, out)
}

// do sends one request (path already escaped) and decodes a 2xx JSON answer into out. Other
// statuses return a *RegistryError.
func (c *registryClient) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("registry: encoding %s %s: %w", method, path, err)
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, reader)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range c.extra {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("nothing answers at %s (is the service running? `make up` starts it; %s): %w", c.base, c.hint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxRegistryErrorBody))
		rerr := decodeRegistryError(resp.StatusCode, raw)
		if resp.StatusCode == http.StatusUnauthorized && c.token == "" {
			return fmt.Errorf("%w (no token: pass --token or set %s)", rerr, registryTokenEnv)
		}
		return rerr
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxRegistryBody))
	if err != nil {
		return fmt.Errorf("registry: reading %s %s: %w", method, path, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("registry: decoding %s %s: %w", method, path, err)
	}
	return nil
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

// outputFormat is the --output flag: table (default) or json.
type outputFormat string

const (
	outputTable outputFormat = "table"
	outputJSON  outputFormat = "json"
)

func (f *outputFormat) String() string { return string(*f) }
func (f *outputFormat) Type() string   { return "format" }
func (f *outputFormat) Set(v string) error {
	switch outputFormat(v) {
	case outputTable, outputJSON:
		*f = outputFormat(v)
		return nil
	}
	return errors.New("want table or json")
}

// writeJSON writes raw JSON (an object or array the registry sent) indented.
func writeJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("registry: indenting JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// writeJSONArray writes items, each as the registry sent it, as one indented array.
func writeJSONArray(w io.Writer, items []json.RawMessage) error {
	if items == nil {
		items = []json.RawMessage{}
	}
	raw, err := json.Marshal(items)
	if err != nil {
		return fmt.Errorf("registry: encoding JSON: %w", err)
	}
	return writeJSON(w, raw)
}

// table writes aligned columns; cells are sanitized so a tab or newline in a value (a reason,
// a tag) cannot break the layout.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = cell(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	return truncate(s, 120)
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
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
