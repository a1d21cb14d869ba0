package search

import (
	"fmt"
	"strings"
)

// Lifecycle stages of runs, as stored in registry_runs.lifecycle_stage.
const (
	LifecycleActive  = "active"
	LifecycleDeleted = "deleted"
)

// RunsQuery is one page of runs/search over the ClickHouse table registry_runs
// (schemas/clickhouse/0009_registry_runs.sql).
type RunsQuery struct {
	ExperimentIDs []string // at least one
	Filter        Filter   // as parsed; SQL validates it against Runs
	Orders        []Order  // as parsed; none means start_time DESC; run_id ASC always ends the order
	Lifecycle     string   // LifecycleActive (ACTIVE_ONLY), LifecycleDeleted (DELETED_ONLY) or "" (ALL)
	Limit, Offset int      // Limit 0: no limit (then Offset must be 0)
}

// runColumns maps the attributes of Runs to their columns.
var runColumns = map[string]string{
	"run_id": "run_id", "run_name": "run_name", "user_id": "user_id", "status": "status",
	"artifact_uri": "artifact_uri", "lifecycle_stage": "lifecycle_stage",
	"start_time": "start_time", "end_time": "end_time",
}

// nullableColumns may be NULL; NULL sorts last.
var nullableColumns = map[string]bool{"end_time": true}

// arrays names the parallel key and value arrays of metrics, params and tags.
var arrays = map[Entity][2]string{
	Metric: {"metric_keys", "metric_values"},
	Param:  {"param_keys", "param_values"},
	Tag:    {"tag_keys", "tag_values"},
}

// SQL returns the query selecting the matching run ids in order, reading the newest
// snapshot of every run (FINAL), and its positional arguments (clickhouse-go binds them on
// the client; every key and value of the filter is an argument, never SQL text). Errors
// wrap ErrInvalid. The SQL runs on ClickHouse 18.16 and later: no ILIKE (ILIKE is
// lowerUTF8(x) LIKE lowerUTF8(pattern)), no Map type, one placeholder per IN element.
func (q RunsQuery) SQL() (string, []any, error) {
	f, err := Runs.Filter(q.Filter)
	if err != nil {
		return "", nil, err
	}
	orders, err := Runs.OrderBy(q.Orders)
	if err != nil {
		return "", nil, err
	}
	if len(q.ExperimentIDs) == 0 {
		return "", nil, fmt.Errorf("search runs: no experiment ids: %w", ErrInvalid)
	}
	if q.Limit < 0 || q.Offset < 0 || q.Limit == 0 && q.Offset > 0 {
		return "", nil, fmt.Errorf("search runs: limit %d, offset %d: %w", q.Limit, q.Offset, ErrInvalid)
	}
	var b sqlBuilder
	b.sql("SELECT run_id FROM registry_runs FINAL WHERE experiment_id IN ")
	b.list(q.ExperimentIDs)
	switch q.Lifecycle {
	case LifecycleActive, LifecycleDeleted:
		b.sql(" AND lifecycle_stage = ?", q.Lifecycle)
	case "":
	default:
		return "", nil, fmt.Errorf("search runs: lifecycle %q is not %q, %q or empty: %w",
			q.Lifecycle, LifecycleActive, LifecycleDeleted, ErrInvalid)
	}
	for _, c := range f {
		b.sql(" AND (")
		b.condition(c)
		b.sql(")")
	}
	b.sql(" ORDER BY ")
	for i, o := range orders {
		if i > 0 {
			b.sql(", ")
		}
		b.order(o)
	}
	if q.Limit > 0 {
		b.sql(" LIMIT ? OFFSET ?", q.Limit, q.Offset)
	}
	// PREWHERE runs before FINAL merges the snapshots, so a condition that held for an older
	// snapshot would let the run through. ClickHouse does not move WHERE to PREWHERE under
	// FINAL by default (18.16 checked; later releases gate it behind
	// optimize_move_to_prewhere_if_final); this pins it off whatever the server's profile says.
	b.sql(" SETTINGS optimize_move_to_prewhere = 0")
	return b.String(), b.args, nil
}

type sqlBuilder struct {
	strings.Builder
	args []any
}

// sql appends constant SQL text holding one ? per arg.
func (b *sqlBuilder) sql(text string, args ...any) {
	b.WriteString(text)
	b.args = append(b.args, args...)
}

// list appends (?, ?, …) for values.
func (b *sqlBuilder) list(values []string) {
	b.sql("(")
	for i, v := range values {
		if i > 0 {
			b.sql(", ")
		}
		b.sql("?", v)
	}
	b.sql(")")
}

// value appends the expression of c's left-hand side: a column, or the value of a key.
func (b *sqlBuilder) value(e Entity, key string) {
	if e == Attribute {
		b.sql(runColumns[key])
		return
	}
	arr := arrays[e]
	b.sql(arr[1]+"[indexOf("+arr[0]+", ?)]", key)
}

func (b *sqlBuilder) condition(c Comparison) {
	if c.Entity != Attribute {
		// MLflow: a comparison on a key the run lacks is false, even !=.
		b.sql("has("+arrays[c.Entity][0]+", ?) AND ", c.Key)
	}
	switch c.Op {
	case OpLike:
		b.value(c.Entity, c.Key)
		b.sql(" LIKE ?", likePattern(c.Str))
	case OpILike:
		b.sql("lowerUTF8(")
		b.value(c.Entity, c.Key)
		b.sql(") LIKE lowerUTF8(?)", likePattern(c.Str))
	case OpIn, OpNotIn:
		b.value(c.Entity, c.Key)
		b.sql(" " + c.Op + " ")
		b.list(c.List)
	default: // = != < <= > >=
		b.value(c.Entity, c.Key)
		b.sql(" "+c.Op+" ?", c.bindValue())
	}
}

// bindValue is the comparison's value as a bind argument: metrics compare as Float64,
// integer attributes with integers exactly.
func (c Comparison) bindValue() any {
	switch {
	case !c.IsNum:
		return c.Str
	case c.Entity == Metric:
		return c.Num
	}
	if n, ok := c.intValue(); ok {
		return n
	}
	return c.Num
}

// order appends the sort keys of o: missing values last in either direction (NaN metrics
// just before them), then the value.
func (b *sqlBuilder) order(o Order) {
	dir := " ASC"
	if o.Desc {
		dir = " DESC"
	}
	switch {
	case o.Entity == Metric:
		b.sql("multiIf(has(metric_keys, ?) = 0, 2, isNaN(metric_values[indexOf(metric_keys, ?)]), 1, 0), ", o.Key, o.Key)
	case o.Entity != Attribute:
		b.sql("has("+arrays[o.Entity][0]+", ?) = 0, ", o.Key)
	case nullableColumns[o.Key]:
		b.sql("isNull(" + runColumns[o.Key] + "), ")
	}
	b.value(o.Entity, o.Key)
	b.sql(dir)
}
