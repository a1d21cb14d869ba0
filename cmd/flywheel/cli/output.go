package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// outputFormat is the -o/--output flag every command that prints data has: table (the
// default, for people) or json (for scripts: one JSON document on stdout, progress and errors
// on stderr). "text" is accepted as another name for table.
type outputFormat string

const (
	outputTable outputFormat = "table"
	outputJSON  outputFormat = "json"
)

func (f *outputFormat) String() string { return string(*f) }
func (f *outputFormat) Type() string   { return "format" }
func (f *outputFormat) Set(v string) error {
	switch outputFormat(v) {
	case outputTable, "text":
		*f = outputTable
		return nil
	case outputJSON:
		*f = outputJSON
		return nil
	}
	return errors.New("want table or json")
}

// addOutputFlag registers -o/--output on cmd (persistent, so a command group's subcommands
// share it) with the table default.
func addOutputFlag(cmd *cobra.Command, f *outputFormat) {
	*f = outputTable
	cmd.PersistentFlags().VarP(f, "output", "o", "output format: table or json")
}

// emit is the one way commands print their result: under -o json, v as indented JSON (v may
// be raw JSON a service sent — json.RawMessage or []json.RawMessage, printed as sent — or any
// value encoding/json takes); otherwise human reports it to w as a table or text.
func emit(w io.Writer, format outputFormat, v any, human func(w io.Writer) error) error {
	if format == outputJSON {
		return writeJSON(w, v)
	}
	return human(w)
}

// writeJSON writes v indented, with a final newline. Raw JSON keeps its content and order.
func writeJSON(w io.Writer, v any) error {
	var raw []byte
	switch x := v.(type) {
	case json.RawMessage:
		raw = x
	case []json.RawMessage:
		if x == nil {
			x = []json.RawMessage{}
		}
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Errorf("encoding JSON: %w", err)
		}
		raw = b
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding JSON: %w", err)
		}
		raw = b
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("indenting JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// table writes aligned columns; cells are sanitized so a tab or newline in a value (a reason,
// a tag) cannot break the layout, and empty cells print as "-".
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

// keyValues prints "Key:  value" lines aligned, for a single object (a run, a status).
type keyValues struct{ tw *tabwriter.Writer }

func newKeyValues(w io.Writer) *keyValues {
	return &keyValues{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
}

func (k *keyValues) add(key, value string) { fmt.Fprintf(k.tw, "%s:\t%s\n", key, cell(value)) }

func (k *keyValues) flush() error { return k.tw.Flush() }

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

// indented prefixes every line written through it with two spaces.
type indented struct {
	w         io.Writer
	midOfLine bool
}

func (i *indented) Write(p []byte) (int, error) {
	var b bytes.Buffer
	for _, c := range p {
		if !i.midOfLine {
			b.WriteString("  ")
		}
		b.WriteByte(c)
		i.midOfLine = c != '\n'
	}
	if _, err := i.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}
