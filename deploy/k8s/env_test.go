package k8s_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// This file reads, from the services' Go source, every environment variable each service
// reads — the way platform/config.Load walks a service's Config struct: a field with an env
// tag is a variable named FLYWHEEL_ + the prefixes of its enclosing fields + the tag; a struct
// field without one is walked with its prefix tag added. The manifests are checked against
// this, so they cannot name a variable the code does not read.

const modulePath = "github.com/flywheel-ml/flywheel/"

// goVar is one variable a service reads.
type goVar struct {
	Name    string // FLYWHEEL_...
	Type    string // Go type as written: string, bool, int, int64, float64, time.Duration, []string
	Default string
	Secret  bool
}

var (
	envOnce sync.Once
	envVars map[string]map[string]goVar // service → name → variable
	envErr  error
)

// serviceVars returns the variables every service reads, keyed by service then name.
func serviceVars(t *testing.T) map[string]map[string]goVar {
	t.Helper()
	envOnce.Do(func() {
		envVars = map[string]map[string]goVar{}
		r := &sourceReader{root: repoRoot(t), pkgs: map[string][]*ast.File{}}
		for _, svc := range serviceNames {
			vars, err := r.configVars(filepath.Join("services", svc))
			if err != nil {
				envErr = fmt.Errorf("%s: %w", svc, err)
				return
			}
			if len(vars) < 10 {
				envErr = fmt.Errorf("%s: only %d variables found in its Config: the source reader is broken", svc, len(vars))
				return
			}
			envVars[svc] = vars
		}
	})
	if envErr != nil {
		t.Fatalf("reading the services' config structs: %v", envErr)
	}
	return envVars
}

type sourceReader struct {
	root string
	pkgs map[string][]*ast.File // repository-relative directory → parsed non-test files
}

func (r *sourceReader) files(dir string) ([]*ast.File, error) {
	if fs, ok := r.pkgs[dir]; ok {
		return fs, nil
	}
	names, err := filepath.Glob(filepath.Join(r.root, dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no Go files in %s", dir)
	}
	r.pkgs[dir] = files
	return files, nil
}

// structType finds the struct type name declared in dir, with the file declaring it.
func (r *sourceReader) structType(dir, name string) (*ast.StructType, *ast.File, error) {
	files, err := r.files(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				if ts.Name.Name != name {
					continue
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					return nil, nil, nil // a named non-struct type: a leaf
				}
				return st, f, nil
			}
		}
	}
	return nil, nil, nil
}

// configVars returns the variables of the Config struct of the package in dir.
func (r *sourceReader) configVars(dir string) (map[string]goVar, error) {
	st, f, err := r.structType(dir, "Config")
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("no Config struct in %s", dir)
	}
	out := map[string]goVar{}
	return out, r.walk(st, f, dir, "", nil, out)
}

func (r *sourceReader) walk(st *ast.StructType, f *ast.File, dir, prefix string, overrides map[string]string, out map[string]goVar) error {
	for _, field := range st.Fields.List {
		if len(field.Names) > 0 && !field.Names[0].IsExported() {
			continue
		}
		var tag reflect.StructTag
		if field.Tag != nil {
			raw, err := strconv.Unquote(field.Tag.Value)
			if err != nil {
				return err
			}
			tag = reflect.StructTag(raw)
		}
		// A struct-typed field is walked, as config.walk does.
		nested, nf, ndir, err := r.resolve(field.Type, f, dir)
		if err != nil {
			return err
		}
		if nested != nil {
			if err := r.walk(nested, nf, ndir, prefix+tag.Get("prefix"), parseDefaults(tag.Get("defaults")), out); err != nil {
				return err
			}
			continue
		}
		name, ok := tag.Lookup("env")
		if !ok {
			continue
		}
		def := tag.Get("default")
		if o, ok := overrides[name]; ok {
			def = o
		}
		v := goVar{Name: "FLYWHEEL_" + prefix + name, Type: exprString(field.Type), Default: def, Secret: tag.Get("secret") == "true"}
		if _, dup := out[v.Name]; dup {
			return fmt.Errorf("%s declared twice", v.Name)
		}
		out[v.Name] = v
	}
	return nil
}

// resolve returns the struct type expr names when it is declared in this repository.
func (r *sourceReader) resolve(expr ast.Expr, f *ast.File, dir string) (*ast.StructType, *ast.File, string, error) {
	switch e := expr.(type) {
	case *ast.Ident:
		st, sf, err := r.structType(dir, e.Name)
		return st, sf, dir, err
	case *ast.SelectorExpr:
		pkg, ok := e.X.(*ast.Ident)
		if !ok {
			return nil, nil, "", nil
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			name := path.Base(p)
			if imp.Name != nil {
				name = imp.Name.Name
			}
			if name != pkg.Name {
				continue
			}
			rel, ok := strings.CutPrefix(p, modulePath)
			if !ok {
				return nil, nil, "", nil // time.Duration and other outside types are leaves
			}
			st, sf, err := r.structType(rel, e.Sel.Name)
			return st, sf, rel, err
		}
		return nil, nil, "", fmt.Errorf("%s.%s: package not imported", pkg.Name, e.Sel.Name)
	}
	return nil, nil, "", nil
}

func parseDefaults(tag string) map[string]string {
	out := map[string]string{}
	for kv := range strings.SplitSeq(tag, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[strings.TrimSpace(k)] = v
		}
	}
	return out
}

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	case *ast.ArrayType:
		return "[]" + exprString(e.Elt)
	}
	return fmt.Sprintf("%T", e)
}

// repoRoot is the repository holding this module (two levels up).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	return root
}

func TestServiceVarsMatchPlatformConfig(t *testing.T) {
	vars := serviceVars(t)
	// Spot checks that the reader resolves prefixes, defaults overrides and nested platform
	// structs as platform/config does.
	for _, c := range []struct{ svc, name, typ, def string }{
		{"ingest", "FLYWHEEL_INGEST_ADDR", "string", "127.0.0.1:8081"},
		{"serving", "FLYWHEEL_SERVING_GRPC_ADDR", "string", "127.0.0.1:8094"},
		{"serving", "FLYWHEEL_REGISTRY_PREFIX", "string", ""},
		{"registry", "FLYWHEEL_NATS_URL", "string", "nats://127.0.0.1:4222"},
		{"features", "FLYWHEEL_KAFKA_BROKERS", "[]string", "127.0.0.1:9092"},
		{"monitor", "FLYWHEEL_MONITOR_WINDOW", "time.Duration", "5m"},
		{"trainer", "FLYWHEEL_CLICKHOUSE_TLS", "bool", ""},
	} {
		v, ok := vars[c.svc][c.name]
		if !ok {
			t.Errorf("%s: %s not found", c.svc, c.name)
			continue
		}
		if v.Type != c.typ || v.Default != c.def {
			t.Errorf("%s: %s is %s default %q, want %s default %q", c.svc, c.name, v.Type, v.Default, c.typ, c.def)
		}
	}
	if _, ok := vars["monitor"]["FLYWHEEL_REDIS_ADDR"]; ok {
		t.Error("monitor reads no Redis, yet FLYWHEEL_REDIS_ADDR was found")
	}
	if !vars["ingest"]["FLYWHEEL_AUTH_TOKENS"].Secret {
		t.Error("FLYWHEEL_AUTH_TOKENS is not marked secret")
	}
}
