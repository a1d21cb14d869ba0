package artifacts_test

import (
	"errors"
	"path"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/flywheel-ml/flywheel/services/registry/artifacts"
)

func TestCleanPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"1/0a1b/artifacts/model/model.pkl", true},
		{"model.pkl", true},
		{"a/.hidden/..x/b..", true},
		{"runs/r1/artifacts/éval résumé.json", true},
		{strings.Repeat("x", 1024), true},
		{"", false},
		{strings.Repeat("x", 1025), false},
		{"/etc/passwd", false},
		{"a/../../etc", false},
		{"..", false},
		{"a/..", false},
		{".", false},
		{"./a", false},
		{"a/./b", false},
		{"a//b", false},
		{"a/", false},
		{`a\..\b`, false},
		{"a\x00b", false},
		{"a\tb", false},
		{"a\x1bb", false},
		{"a\u0085b", false},
		{"\xc0\xaf", false},
	} {
		got, err := artifacts.CleanPath(tc.path)
		if tc.ok && (err != nil || got != tc.path) {
			t.Errorf("CleanPath(%q) = %q, %v; want it accepted unchanged", tc.path, got, err)
		}
		if !tc.ok && !errors.Is(err, artifacts.ErrInvalidPath) {
			t.Errorf("CleanPath(%q) = %q, %v; want ErrInvalidPath", tc.path, got, err)
		}
	}
}

// Whatever CleanPath accepts is returned unchanged and is a clean, relative, printable,
// bounded path that cannot climb out of the bucket; everything else is ErrInvalidPath.
func FuzzCleanPath(f *testing.F) {
	for _, seed := range []string{"1/r/artifacts/model.pkl", "", "/", "..", "a/../b", "a//b", "a/./b", `a\b`,
		"a\x00b", "\xff", "a/", "./a", "é/ü", strings.Repeat("ab/", 400)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := artifacts.CleanPath(p)
		if err != nil {
			if !errors.Is(err, artifacts.ErrInvalidPath) || got != "" {
				t.Fatalf("CleanPath(%q) = %q, %v: a rejection must be ErrInvalidPath with no path", p, got, err)
			}
			return
		}
		switch {
		case got != p:
			t.Fatalf("CleanPath(%q) rewrote the path to %q", p, got)
		case got == "" || len(got) > artifacts.MaxPathBytes:
			t.Fatalf("CleanPath accepted a path of %d bytes", len(got))
		case path.Clean(got) != got || path.IsAbs(got) || got == "." || got == ".." || strings.HasPrefix(got, "../"):
			t.Fatalf("CleanPath accepted %q, which is not a clean relative path", got)
		case strings.ContainsRune(got, '\\') || !utf8.ValidString(got) || strings.IndexFunc(got, unicode.IsControl) >= 0:
			t.Fatalf("CleanPath accepted %q with a backslash, invalid UTF-8 or a control character", got)
		}
		for seg := range strings.SplitSeq(got, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("CleanPath accepted %q with segment %q", got, seg)
			}
		}
	})
}
