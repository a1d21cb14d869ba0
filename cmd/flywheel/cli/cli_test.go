package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flywheel-ml/flywheel/cmd/flywheel/cli"
)

func writeSchema(t *testing.T, dir, enum string) {
	t.Helper()
	doc := `{"x-flywheel":{"version":1,"event_id":{"fields":["id"]},"entity":"u","event_time":"ts"},
	 "type":"object","required":["id","u","ts"],"properties":{"kind":{"enum":[` + enum + `]}}}`
	if err := os.WriteFile(filepath.Join(dir, "clicks.json"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSchemasCheckAgainstDirectory(t *testing.T) {
	base, next := t.TempDir(), t.TempDir()
	writeSchema(t, base, `"a","b"`)
	writeSchema(t, next, `"a"`)
	var out bytes.Buffer
	cmd := cli.New(&out, &out, func(string) (string, bool) { return "", false })
	cmd.SetArgs([]string{"schemas", "check", "--dir", next, "--against", base})
	err := cmd.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(out.String(), "narrowed enum /kind: removed b") {
		t.Fatalf("want a refusal naming the narrowed enum, got %v:\n%s", err, out.String())
	}
	out.Reset()
	cmd = cli.New(&out, &out, func(string) (string, bool) { return "", false })
	cmd.SetArgs([]string{"schemas", "check", "--dir", base, "--against", base})
	if err := cmd.ExecuteContext(context.Background()); err != nil || !strings.Contains(out.String(), "unchanged") {
		t.Fatalf("an unchanged catalog must pass: %v\n%s", err, out.String())
	}
}
