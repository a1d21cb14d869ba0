package validate_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/ingest/catalog"
	"github.com/flywheel-ml/flywheel/services/ingest/validate"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

const validTxn = `{"transaction_id":"t-1","card_id":"c-42","amount":12.5,"currency":"EUR","merchant_id":"m-7","merchant_category":"grocery","country":"DE","channel":"pos","event_time":"2026-11-22T10:00:00Z"}`

func setup(t testing.TB) (*validate.Validator, *catalog.Catalog) {
	t.Helper()
	c, err := catalog.Load(schemas.Streams())
	if err != nil {
		t.Fatal(err)
	}
	return validate.New(validate.Config{MaxFutureSkew: 5 * time.Minute}, func() time.Time { return now }), c
}

func txnWith(field, rawValue string) string {
	if rawValue == "" {
		return strings.Replace(validTxn, fmt.Sprintf(`"%s":`, field), `"removed_`+field+`":`, 1)
	}
	out := validTxn
	start := strings.Index(out, `"`+field+`":`) + len(field) + 3
	end := start + strings.IndexAny(out[start:], ",}")
	if out[start] == '"' {
		end = start + 1 + strings.Index(out[start+1:], `"`) + 1
	}
	return out[:start] + rawValue + out[end:]
}

func TestValidTransaction(t *testing.T) {
	v, c := setup(t)
	s, _ := c.Get("transactions")
	ev, reasons := v.Validate(s, []byte(validTxn))
	if reasons != nil {
		t.Fatalf("valid event rejected: %v", reasons)
	}
	if ev.ID != "t-1" || ev.Entity != "c-42" || !ev.Time.Equal(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)) || string(ev.Raw) != validTxn {
		t.Fatalf("unexpected event %+v", ev)
	}
	ev, reasons = v.Validate(s, []byte(txnWith("event_time", "1795348800000")))
	if reasons != nil || ev.Time.UnixMilli() != 1795348800000 {
		t.Fatalf("epoch ms: %v %v", ev.Time, reasons)
	}
}

func TestRejectionReasonsNameTheField(t *testing.T) {
	v, c := setup(t)
	s, _ := c.Get("transactions")
	cases := []struct {
		name, raw, want string
	}{
		{"negative amount", txnWith("amount", "-5"), "/amount: must be >= 0"},
		{"amount as string", txnWith("amount", `"12"`), "/amount: must be number, got string"},
		{"unknown currency", txnWith("currency", `"XXY"`), `/currency: "XXY" is not one of the`},
		{"unknown channel", txnWith("channel", `"fax"`), `/channel: must be one of "pos", "ecom", "atm", got "fax"`},
		{"unknown country", txnWith("country", `"ZZ"`), `/country: "ZZ" is not one of the`},
		{"missing card", txnWith("card_id", ""), "/card_id: required field is missing"},
		{"extra field", strings.Replace(validTxn, `{`, `{"pin":"1234",`, 1), "/pin: field is not allowed"},
		{"empty id", txnWith("transaction_id", `""`), "/transaction_id: length must be >= 1"},
		{"bad timestamp", txnWith("event_time", `"yesterday"`), "/event_time:"},
		{"fractional epoch", txnWith("event_time", `1.5`), "/event_time: must be integer or string, got number"},
		{"future", txnWith("event_time", `"2026-11-22T13:00:00Z"`), "/event_time: 2026-11-22T13:00:00Z is 1h0m0s in the future; the limit is 5m0s"},
		{"duplicate keys", strings.Replace(validTxn, `{`, `{"amount":1,`, 1), "/: not valid JSON: duplicate object member name"},
		{"invalid utf-8", strings.Replace(validTxn, "grocery", "gro\xffcery", 1), "/: not valid JSON: invalid UTF-8"},
		{"NaN", txnWith("amount", "NaN"), "/: not valid JSON"},
		{"Infinity", txnWith("amount", "Infinity"), "/: not valid JSON"},
		{"not an object", `[1,2]`, "/: must be object, got array"},
		{"truncated", validTxn[:40], "/: not valid JSON"},
		{"deep nesting", strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100), "/: nested deeper than 32 levels"},
		{"huge string", txnWith("merchant_id", `"`+strings.Repeat("m", 100000)+`"`), "/merchant_id: length must be <= 128"},
	}
	for _, tc := range cases {
		_, reasons := v.Validate(s, []byte(tc.raw))
		var got []string
		for _, r := range reasons {
			got = append(got, r.String())
		}
		joined := strings.Join(got, " | ")
		if len(reasons) == 0 || !strings.Contains(joined, tc.want) {
			t.Errorf("%s: want a reason containing %q, got %q", tc.name, tc.want, joined)
		}
	}
}

func TestLabelIDsAndDerivedIDs(t *testing.T) {
	v, c := setup(t)
	labels, _ := c.Get("fraud_labels")
	ev, reasons := v.Validate(labels, []byte(`{"transaction_id":"t-1","card_id":"c-42","is_fraud":false,"event_time":"2026-11-21T10:00:00Z"}`))
	if reasons != nil || ev.ID != "t-1:label" {
		t.Fatalf("label id: %q %v", ev.ID, reasons)
	}

	s, err := catalog.Compile("clicks", []byte(`{"x-flywheel":{"version":1,"event_id":{"derive":true},"entity":"user","event_time":"ts"},
		"type":"object","required":["user","ts"]}`))
	if err != nil {
		t.Fatal(err)
	}
	a, ra := v.Validate(s, []byte(`{"user":"u1","ts":1000,"page":"/home"}`))
	b, rb := v.Validate(s, []byte(`{ "page" : "/home", "ts":1000, "user":"u1" }`))
	d, rd := v.Validate(s, []byte(`{"user":"u1","ts":1000,"page":"/away"}`))
	if ra != nil || rb != nil || rd != nil {
		t.Fatal(ra, rb, rd)
	}
	if a.ID != b.ID || a.ID == d.ID || !a.IDDerived || !strings.HasPrefix(a.ID, "sha256:") {
		t.Fatalf("derived ids must depend on content only: %s %s %s", a.ID, b.ID, d.ID)
	}
}

func TestSplit(t *testing.T) {
	cases := []struct {
		name, body string
		ndjson     bool
		items      []string
		err        error
	}{
		{"object", ` {"a":1} `, false, []string{`{"a":1}`}, nil},
		{"array", "[ {\"a\":1},\n {\"b\": [1,2]} ,{}]", false, []string{`{"a":1}`, `{"b": [1,2]}`, `{}`}, nil},
		{"array of mixed", `[1, "x", {"a":1}]`, false, []string{`1`, `"x"`, `{"a":1}`}, nil},
		{"ndjson", "{\"a\":1}\n\n{broken\n{\"c\":3}\n", true, []string{`{"a":1}`, `{broken`, `{"c":3}`}, nil},
		{"empty", "  \n", false, nil, validate.ErrEmpty},
		{"scalar", `42`, false, nil, validate.ErrNotJSON},
		{"broken object", `{"a":`, false, nil, validate.ErrNotJSON},
		{"two objects without ndjson", "{\"a\":1}\n{\"b\":2}", false, nil, validate.ErrNotJSON},
		{"broken array", `[{"a":1}, {"b":]`, false, nil, validate.ErrBadArray},
		{"trailing data", `[{"a":1}] x`, false, nil, validate.ErrBadArray},
		{"too many", `[{},{},{},{}]`, false, nil, validate.ErrTooMany},
	}
	for _, tc := range cases {
		items, err := validate.Split([]byte(tc.body), tc.ndjson, 3)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: want %v, got %v", tc.name, tc.err, err)
			}
			continue
		}
		if err != nil || len(items) != len(tc.items) {
			t.Errorf("%s: got %d items, %v", tc.name, len(items), err)
			continue
		}
		for i, it := range items {
			if string(it.Raw) != tc.items[i] || it.Index != i {
				t.Errorf("%s: item %d = %q (index %d), want %q", tc.name, i, it.Raw, it.Index, tc.items[i])
			}
		}
	}
}

func BenchmarkValidateTransaction(b *testing.B) {
	b.Run("fast", func(b *testing.B) { benchValidate(b, false) })
	b.Run("full", func(b *testing.B) { benchValidate(b, true) })
}

func benchValidate(b *testing.B, full bool) {
	c, err := catalog.Load(schemas.Streams())
	if err != nil {
		b.Fatal(err)
	}
	v := validate.New(validate.Config{MaxFutureSkew: 5 * time.Minute, NoFastPath: full}, func() time.Time { return now })
	s, _ := c.Get("transactions")
	raw := []byte(validTxn)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, reasons := v.Validate(s, raw); reasons != nil {
			b.Fatal(reasons)
		}
	}
}

func FuzzSplitAndValidate(f *testing.F) {
	for _, seed := range []string{validTxn, "[" + validTxn + "," + validTxn + "]", txnWith("amount", "-1"),
		`{"a":1,"a":2}`, "{\"x\":\"\xff\"}", `[1,2`, strings.Repeat("[", 50), `{"event_time":1e400}`, ""} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	v, c := setup(f)
	full := validate.New(validate.Config{MaxFutureSkew: 5 * time.Minute, NoFastPath: true}, func() time.Time { return now })
	s, _ := c.Get("transactions")
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		items, err := validate.Split(body, ndjson, 1000)
		if err != nil {
			return
		}
		for _, it := range items {
			ev, reasons := v.Validate(s, it.Raw)
			want, wantReasons := full.Validate(s, it.Raw)
			if (reasons == nil) != (wantReasons == nil) || ev.ID != want.ID || ev.Entity != want.Entity || !ev.Time.Equal(want.Time) {
				t.Fatalf("fast path disagrees with the full validator on %q:\nfast %+v %v\nfull %+v %v", it.Raw, ev, reasons, want, wantReasons)
			}
			if reasons == nil && (ev.ID == "" || ev.Entity == "" || ev.Time.IsZero()) {
				t.Fatalf("accepted an event without id, entity or time: %q", it.Raw)
			}
			for _, r := range reasons {
				if r.Keyword == "" || r.Message == "" {
					t.Fatalf("reason without keyword or message: %+v", r)
				}
			}
		}
	})
}
