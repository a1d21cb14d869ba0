// Package config fills configuration structs from defaults, FLYWHEEL_* environment variables
// and command-line flags, in that order of precedence (a flag beats the environment).
//
// Fields are declared with struct tags:
//
//	Brokers []string `env:"KAFKA_BROKERS" default:"127.0.0.1:9092" usage:"Kafka bootstrap brokers"`
//	Password string  `env:"CLICKHOUSE_PASSWORD" secret:"true"`
//	HTTP httpx.Config `prefix:"INGEST_" defaults:"ADDR=127.0.0.1:8081"` // nested struct: its
//	                                     // names get INGEST_ in front, and its own defaults
//
// Supported field types: string, bool, int, int64, float64, time.Duration and []string
// (comma-separated). Every struct that implements Validator is validated after loading, so a
// bad value fails start-up with a message that names the variable.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix is put in front of every variable name.
const EnvPrefix = "FLYWHEEL_"

// Validator is implemented by configuration structs that check their own values.
type Validator interface {
	Validate() error
}

// LookupFunc reads one environment variable; os.LookupEnv is the usual one.
type LookupFunc func(name string) (string, bool)

// Load fills cfg (a pointer to a struct) from defaults, the environment and args.
// It returns flag.ErrHelp when args ask for help, after printing the usage to out.
func Load(cfg any, args []string, lookup LookupFunc, out io.Writer) error {
	fields, err := collect(cfg)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("flywheel", flag.ContinueOnError)
	fs.SetOutput(out)
	for _, f := range fields {
		raw := f.def
		source := "default"
		if v, ok := lookup(f.env); ok {
			raw, source = v, "environment"
		}
		if err := set(f.value, raw); err != nil {
			return fmt.Errorf("%s: %q from %s: %w", f.env, raw, source, err)
		}
		fs.Func(f.flag, fmt.Sprintf("%s (env %s, default %q)", f.usage, f.env, f.def), func(v string) error {
			if err := set(f.value, v); err != nil {
				return fmt.Errorf("%s: %w", f.env, err)
			}
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return validate(reflect.ValueOf(cfg), "")
}

// Describe lists every variable as "NAME=value", with secrets masked, for logging at start-up.
func Describe(cfg any) []string {
	fields, err := collect(cfg)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		v := format(f.value)
		if f.secret && v != "" {
			v = "*****"
		}
		out = append(out, f.env+"="+v)
	}
	return out
}

type field struct {
	env, flag, def, usage string
	secret                bool
	value                 reflect.Value
}

func collect(cfg any) ([]field, error) {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, errors.New("config: Load needs a pointer to a struct")
	}
	var fields []field
	if err := walk(v.Elem(), "", nil, &fields); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, f := range fields {
		if seen[f.env] {
			return nil, fmt.Errorf("config: variable %s is declared twice", f.env)
		}
		seen[f.env] = true
	}
	return fields, nil
}

var durationType = reflect.TypeFor[time.Duration]()

func walk(v reflect.Value, prefix string, overrides map[string]string, out *[]field) error {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		fv := v.Field(i)
		if sf.Type.Kind() == reflect.Struct && sf.Type != durationType {
			if err := walk(fv, prefix+sf.Tag.Get("prefix"), parseOverrides(sf.Tag.Get("defaults")), out); err != nil {
				return err
			}
			continue
		}
		name, ok := sf.Tag.Lookup("env")
		if !ok {
			continue
		}
		if !supported(sf.Type) {
			return fmt.Errorf("config: field %s has unsupported type %s", sf.Name, sf.Type)
		}
		full := prefix + name
		def := sf.Tag.Get("default")
		if o, ok := overrides[name]; ok {
			def = o
		}
		*out = append(*out, field{
			env:    EnvPrefix + full,
			flag:   strings.ReplaceAll(strings.ToLower(full), "_", "-"),
			def:    def,
			usage:  sf.Tag.Get("usage"),
			secret: sf.Tag.Get("secret") == "true",
			value:  fv,
		})
	}
	return nil
}

// parseOverrides reads a nested struct's `defaults:"ADDR=127.0.0.1:8081;OTHER=x"` tag, which
// lets each service give a shared struct its own defaults.
func parseOverrides(tag string) map[string]string {
	out := map[string]string{}
	for kv := range strings.SplitSeq(tag, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[strings.TrimSpace(k)] = v
		}
	}
	return out
}

func supported(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	}
	return false
}

func set(v reflect.Value, raw string) error {
	raw = strings.TrimSpace(raw)
	switch {
	case v.Type() == durationType:
		if raw == "" {
			v.SetInt(0)
			return nil
		}
		d, err := time.ParseDuration(raw)
		if err != nil {
			return errors.New("not a duration (examples: 500ms, 10s, 2m)")
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(raw)
	case v.Kind() == reflect.Bool:
		if raw == "" {
			v.SetBool(false)
			return nil
		}
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("not a boolean (true or false)")
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		if raw == "" {
			v.SetInt(0)
			return nil
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return errors.New("not an integer")
		}
		v.SetInt(n)
	case v.Kind() == reflect.Float64:
		if raw == "" {
			v.SetFloat(0)
			return nil
		}
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return errors.New("not a number")
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Slice:
		var items []string
		for item := range strings.SplitSeq(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		v.Set(reflect.ValueOf(items))
	}
	return nil
}

func format(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		return time.Duration(v.Int()).String()
	case v.Kind() == reflect.Slice:
		return strings.Join(v.Interface().([]string), ",")
	default:
		return fmt.Sprint(v.Interface())
	}
}

// validate calls Validate on every nested struct first, then on the struct itself, so the
// innermost, most precise message wins. Field errors get the nested struct's prefix, so they
// name the full variable.
func validate(v reflect.Value, prefix string) error {
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	for i := range v.NumField() {
		sf, fv := v.Type().Field(i), v.Field(i)
		if sf.IsExported() && fv.Kind() == reflect.Struct && fv.Type() != durationType {
			if err := validate(fv.Addr(), prefix+sf.Tag.Get("prefix")); err != nil {
				return err
			}
		}
	}
	val, ok := v.Addr().Interface().(Validator)
	if !ok {
		return nil
	}
	err := val.Validate()
	var fe *FieldError
	if errors.As(err, &fe) && !fe.prefixed {
		return &FieldError{Variable: prefix + fe.Variable, Problem: fe.Problem, prefixed: true}
	}
	return err
}

// FieldError says which variable holds a bad value and how to fix it.
type FieldError struct {
	Variable string // without FLYWHEEL_ and without the prefix of an enclosing struct
	Problem  string
	prefixed bool
}

func (e *FieldError) Error() string { return EnvPrefix + e.Variable + ": " + e.Problem }

// Invalid reports a bad value of variable (named as in its env tag) from a Validate method.
func Invalid(variable, format string, args ...any) error {
	return &FieldError{Variable: variable, Problem: fmt.Sprintf(format, args...)}
}
