package artifacts

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxPathBytes is the longest artifact path accepted.
const MaxPathBytes = 1024

// CleanPath returns p as the object name when it is a clean relative artifact path such as
// "1/5f2c.../artifacts/model/model.pkl", and an error wrapping ErrInvalidPath saying why not
// otherwise. It never rewrites a path ("a/./b" is rejected, not turned into "a/b"), so an
// artifact is stored under exactly the name its client sent, and no path can reach outside
// the bucket's namespace or alias another one.
//
// Rejected: the empty path, absolute paths, "." and ".." segments, empty segments (leading,
// trailing or doubled slashes), backslashes, control characters (NUL included), invalid
// UTF-8 (names are listed back as JSON strings), and paths longer than MaxPathBytes.
func CleanPath(p string) (string, error) {
	switch {
	case p == "":
		return "", fmt.Errorf("%w: the path is empty", ErrInvalidPath)
	case len(p) > MaxPathBytes:
		return "", fmt.Errorf("%w: the path is %d bytes, longer than %d", ErrInvalidPath, len(p), MaxPathBytes)
	case !utf8.ValidString(p):
		return "", fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidPath, p)
	case strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("%w: %q is absolute; artifact paths are relative", ErrInvalidPath, p)
	case strings.ContainsRune(p, '\\'):
		return "", fmt.Errorf("%w: %q contains a backslash", ErrInvalidPath, p)
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return "", fmt.Errorf("%w: %q contains a control character", ErrInvalidPath, p)
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "":
			return "", fmt.Errorf("%w: %q has an empty segment", ErrInvalidPath, p)
		case ".", "..":
			return "", fmt.Errorf("%w: %q has a %q segment", ErrInvalidPath, p, seg)
		}
	}
	return p, nil
}

// cleanDir validates a directory argument of List and Delete: "" (the root) when allowRoot,
// otherwise a clean path; one trailing slash is accepted and dropped ("a/b/" is "a/b").
func cleanDir(dir string, allowRoot bool) (string, error) {
	if dir == "" && allowRoot {
		return "", nil
	}
	if trimmed, ok := strings.CutSuffix(dir, "/"); ok && trimmed != "" {
		dir = trimmed
	}
	return CleanPath(dir)
}
