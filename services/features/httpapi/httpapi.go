// Package httpapi is the features service's HTTP surface: Feast-compatible online lookups,
// point-in-time historical retrieval streamed as NDJSON, and the view listing.
package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/extract"
	"github.com/flywheel-ml/flywheel/services/features/offline"
	"github.com/flywheel-ml/flywheel/services/features/online"
	"github.com/flywheel-ml/flywheel/services/features/stream"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

// MaxOnlineEntities bounds one lookup.
const MaxOnlineEntities = 1000

// Backfiller rebuilds a view's state from the event log (stream.Processor).
type Backfiller interface {
	Backfill(ctx context.Context, view string, maxWait time.Duration) (stream.BackfillReport, error)
	// Rebuilding reports whether the view's online state is being rebuilt after a loss.
	Rebuilding(view string) bool
}

// API holds the handlers.
type API struct {
	stats    *chx.Rollup
	backfill Backfiller
	catalog  *views.Catalog
	reader   *online.Reader
	conn     driver.Conn
	engines  map[string]*agg.Engine
	now      func() time.Time
}

// New returns the API.
func New(cat *views.Catalog, reader *online.Reader, conn driver.Conn, backfill Backfiller, stats *chx.Rollup, now func() time.Time) *API {
	a := &API{catalog: cat, reader: reader, conn: conn, backfill: backfill, stats: stats, engines: map[string]*agg.Engine{}, now: now}
	for _, n := range cat.Names() {
		v, _ := cat.Get(n)
		a.engines[n] = agg.NewEngine(v)
	}
	return a
}

// Register adds the routes.
func (a *API) Register(srv *httpx.Server) {
	srv.Handle("POST /get-online-features", httpx.ScopeRead, a.getOnlineFeatures)
	srv.Handle("POST /v1/features/online", httpx.ScopeRead, a.onlineRows)
	srv.Handle("POST /v1/features/historical", httpx.ScopeRead, a.historical)
	srv.Handle("GET /v1/feature-views", httpx.ScopeRead, a.listViews)
	srv.Handle("POST /v1/features/backfill", httpx.ScopeAdmin, a.runBackfill)
}

func (a *API) runBackfill(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		View    string `json:"view"`
		MaxWait string `json:"max_wait"`
	}
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	if _, ok := a.catalog.Get(req.View); !ok {
		return httpx.NotFound("unknown_view", fmt.Sprintf("no feature view %q", req.View))
	}
	wait := 30 * time.Second
	if req.MaxWait != "" {
		d, err := time.ParseDuration(req.MaxWait)
		if err != nil || d < 0 {
			return httpx.BadRequest("bad_max_wait", "max_wait is a duration such as 30s")
		}
		wait = d
	}
	rep, err := a.backfill.Backfill(r.Context(), req.View, wait)
	if err != nil {
		return httpx.Unavailable("backfill failed; run it again", err)
	}
	httpx.WriteJSON(w, http.StatusOK, rep)
	return nil
}

type onlineRequest struct {
	Features         []string         `json:"features"`
	FeatureService   string           `json:"feature_service"`
	Entities         map[string][]any `json:"entities"`
	FullFeatureNames bool             `json:"full_feature_names"`
	At               *time.Time       `json:"at"`
}

type column struct {
	Values          []any    `json:"values"`
	Statuses        []string `json:"statuses"`
	EventTimestamps []string `json:"event_timestamps"`
}

func (a *API) resolveFeatures(features []string, service string) ([]online.Ref, error) {
	if service != "" {
		v, ok := a.catalog.Get(service)
		if !ok {
			return nil, httpx.NotFound("unknown_feature_service", fmt.Sprintf("no feature service or view %q", service))
		}
		for _, f := range v.Features {
			features = append(features, v.Name+":"+f.Name)
		}
	}
	if len(features) == 0 {
		return nil, httpx.BadRequest("no_features", "name features as [\"view:feature\", ...] or a feature_service")
	}
	refs, err := a.reader.ParseRefs(features)
	var unknown online.ErrUnknownFeature
	if errors.As(err, &unknown) {
		return nil, httpx.NotFound("unknown_feature", err.Error())
	}
	return refs, err
}

// entityKeys zips the request's join-key columns into entity keys, checking that every view
// of refs is keyed by exactly those join keys.
func (a *API) entityKeys(refs []online.Ref, entities map[string][]any) ([]string, []string, error) {
	v, _ := a.catalog.Get(refs[0].View)
	n := -1
	cols := make([][]string, len(v.Entities))
	for i, k := range v.Entities {
		raw, ok := entities[k]
		if !ok {
			return nil, nil, httpx.BadRequest("missing_join_key", fmt.Sprintf("view %s is keyed by %v; entities lacks %q", v.Name, v.Entities, k))
		}
		if n >= 0 && len(raw) != n {
			return nil, nil, httpx.BadRequest("ragged_entities", "every join key needs the same number of values")
		}
		n = len(raw)
		for _, x := range raw {
			s, err := scalar(x)
			if err != nil {
				return nil, nil, httpx.BadRequest("bad_join_key", fmt.Sprintf("%s: %v", k, err))
			}
			cols[i] = append(cols[i], s)
		}
	}
	for _, r := range refs[1:] {
		other, _ := a.catalog.Get(r.View)
		if fmt.Sprint(other.Entities) != fmt.Sprint(v.Entities) {
			return nil, nil, httpx.BadRequest("mixed_entities", "all features of one request must share the same join keys")
		}
	}
	if n == 0 {
		return nil, nil, httpx.BadRequest("no_entities", "entities holds no values")
	}
	if n > MaxOnlineEntities {
		return nil, nil, &httpx.Error{Status: http.StatusRequestEntityTooLarge, Code: "too_many_entities",
			Message: fmt.Sprintf("%d entities; the limit is %d per request", n, MaxOnlineEntities)}
	}
	keys := make([]string, n)
	for j := range n {
		parts := make([]string, len(cols))
		for i := range cols {
			parts[i] = cols[i][j]
		}
		keys[j] = extract.EntityKey(parts)
	}
	return keys, v.Entities, nil
}

// maxExactInt is the largest integer a JSON number decoded as float64 holds exactly.
const maxExactInt = 1 << 53

func scalar(x any) (string, error) {
	switch v := x.(type) {
	case string:
		return v, nil
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > maxExactInt {
			return "", fmt.Errorf("join key values must be strings or integers within ±2^53 (send larger ones as strings), got %v", v)
		}
		return strconv.FormatInt(int64(v), 10), nil
	}
	return "", fmt.Errorf("join key values must be strings or integers, got %v", x)
}

func (a *API) getOnlineFeatures(w http.ResponseWriter, r *http.Request) error {
	var req onlineRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	refs, err := a.resolveFeatures(req.Features, req.FeatureService)
	if err != nil {
		return err
	}
	keys, joinKeys, err := a.entityKeys(refs, req.Entities)
	if err != nil {
		return err
	}
	values, err := a.lookup(r.Context(), refs, keys, req.At)
	if err != nil {
		return err
	}
	names := append([]string(nil), joinKeys...)
	results := make([]column, 0, len(joinKeys)+len(refs))
	for _, k := range joinKeys {
		col := column{}
		for _, x := range req.Entities[k] {
			col.Values = append(col.Values, x)
			col.Statuses = append(col.Statuses, agg.Present.String())
			col.EventTimestamps = append(col.EventTimestamps, "1970-01-01T00:00:00Z")
		}
		results = append(results, col)
	}
	for ri, ref := range refs {
		name := ref.Feature
		if req.FullFeatureNames {
			name = ref.View + "__" + ref.Feature
		}
		names = append(names, name)
		col := column{Values: make([]any, len(keys)), Statuses: make([]string, len(keys)), EventTimestamps: make([]string, len(keys))}
		for ei := range keys {
			v := values[ei][ri]
			col.Values[ei] = v.Value
			col.Statuses[ei] = v.Status.String()
			ts := v.EventTime
			if ts.IsZero() {
				ts = time.Unix(0, 0).UTC()
			}
			col.EventTimestamps[ei] = ts.Format(time.RFC3339Nano)
		}
		results = append(results, col)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"metadata": map[string]any{"feature_names": names}, "results": results})
	return nil
}

// lookup reads the values of refs for the entity keys at the request's time (now when nil):
// one online read, stale ones answered from the offline store, counted for feature_stats.
func (a *API) lookup(ctx context.Context, refs []online.Ref, keys []string, reqAt *time.Time) ([][]online.Value, error) {
	at := a.now()
	if reqAt != nil {
		at = *reqAt
	}
	for _, ref := range refs {
		if a.backfill != nil && a.backfill.Rebuilding(ref.View) {
			return nil, &httpx.Error{Status: http.StatusServiceUnavailable, Code: "online_store_rebuilding",
				Message: online.ErrStoreLost{View: ref.View}.Error() + " — retry shortly"}
		}
	}
	values, err := a.reader.Lookup(ctx, refs, keys, at)
	var lost online.ErrStoreLost
	if errors.As(err, &lost) {
		return nil, &httpx.Error{Status: http.StatusServiceUnavailable, Code: "online_store_rebuilding", Message: lost.Error() + " — retry shortly"}
	}
	if err != nil {
		return nil, httpx.Unavailable("online store unavailable", err)
	}
	if err := a.answerStaleFromOffline(ctx, refs, keys, at, values); err != nil {
		return nil, httpx.Unavailable("offline store unavailable", err)
	}
	a.countLookup(refs, values)
	return values, nil
}

// answerStaleFromOffline replaces values the online state cannot give exactly (a read time
// further back than the view's read-back) with the offline store's point-in-time values.
func (a *API) answerStaleFromOffline(ctx context.Context, refs []online.Ref, keys []string, at time.Time, values [][]online.Value) error {
	byView := map[string][]int{}
	for ri, ref := range refs {
		byView[ref.View] = append(byView[ref.View], ri)
	}
	for view, ris := range byView {
		var rows []offline.Row
		for ei := range keys {
			if values[ei][ris[0]].Stale {
				rows = append(rows, offline.Row{Index: ei, Entity: keys[ei], TS: at.UnixMilli()})
			}
		}
		if len(rows) == 0 {
			continue
		}
		e := a.engines[view]
		err := offline.Historical(ctx, a.conn, e, rows, func(row offline.Row, results []agg.Result) error {
			for _, ri := range ris {
				idx, _ := e.View.Feature(refs[ri].Feature)
				values[row.Index][ri] = online.ValueOf(e.View, idx, results[idx])
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// countLookup records one lookup's served values and defaults per view, for feature_stats.
func (a *API) countLookup(refs []online.Ref, values [][]online.Value) {
	type counts struct{ values, defaults uint64 }
	byView := map[string]*counts{}
	for _, row := range values {
		for ri, v := range row {
			c := byView[refs[ri].View]
			if c == nil {
				c = &counts{}
				byView[refs[ri].View] = c
			}
			c.values++
			if v.Status != agg.Present {
				c.defaults++
			}
		}
	}
	for view, c := range byView {
		a.stats.Add([]string{view}, []uint64{0, 0, 1, c.values, c.defaults}, []int64{0})
	}
}

type historicalRequest struct {
	Features       []string         `json:"features"`
	FeatureService string           `json:"feature_service"`
	EntityRows     []map[string]any `json:"entity_rows"`
	TimestampField string           `json:"timestamp_field"`
	Format         string           `json:"format"` // ndjson (default) or parquet
}

func (a *API) historical(w http.ResponseWriter, r *http.Request) error {
	var req historicalRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	refs, err := a.resolveFeatures(req.Features, req.FeatureService)
	if err != nil {
		return err
	}
	view := refs[0].View
	for _, ref := range refs {
		if ref.View != view {
			return httpx.BadRequest("one_view", "historical retrieval takes features of one view per request")
		}
	}
	v, _ := a.catalog.Get(view)
	tsField := req.TimestampField
	if tsField == "" {
		tsField = "event_timestamp"
	}
	rows := make([]offline.Row, len(req.EntityRows))
	for i, er := range req.EntityRows {
		parts := make([]string, len(v.Entities))
		for k, key := range v.Entities {
			s, err := scalar(er[key])
			if err != nil || s == "" {
				return httpx.BadRequest("bad_entity_row", fmt.Sprintf("entity_rows[%d].%s: a join key value is needed", i, key))
			}
			parts[k] = s
		}
		tsText, _ := er[tsField].(string)
		ts, err := time.Parse(time.RFC3339Nano, tsText)
		if err != nil {
			return httpx.BadRequest("bad_entity_row", fmt.Sprintf("entity_rows[%d].%s: an RFC 3339 timestamp is needed", i, tsField))
		}
		rows[i] = offline.Row{Index: i, Entity: extract.EntityKey(parts), TS: ts.UnixMilli()}
	}
	e := a.engines[view]
	switch req.Format {
	case "parquet":
		return a.historicalParquet(w, r, e, refs, rows, req.EntityRows, tsField)
	case "", "ndjson":
	default:
		return httpx.BadRequest("bad_format", "format is ndjson or parquet")
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	wrote := false
	err = offline.Historical(r.Context(), a.conn, e, rows, func(row offline.Row, results []agg.Result) error {
		wrote = true
		line := make(map[string]any, len(refs)+3)
		for _, key := range v.Entities {
			line[key] = req.EntityRows[row.Index][key]
		}
		line["row"] = row.Index
		line[tsField] = req.EntityRows[row.Index][tsField]
		for _, ref := range refs {
			idx, _ := v.Feature(ref.Feature)
			line[ref.View+":"+ref.Feature] = online.ValueOf(v, idx, results[idx]).Value
		}
		return enc.Encode(line)
	})
	if err != nil {
		if !wrote {
			return httpx.Unavailable("offline store unavailable", err)
		}
		// Headers are gone: end the stream with an error line the client can detect.
		_ = enc.Encode(map[string]any{"error": map[string]string{"code": "unavailable", "message": "historical retrieval failed mid-stream"}})
	}
	return bw.Flush()
}

// historicalParquet answers with a Parquet file. The file is assembled in memory before the
// first byte is sent, so a failure is still a clean 503.
func (a *API) historicalParquet(w http.ResponseWriter, r *http.Request, e *agg.Engine, refs []online.Ref,
	rows []offline.Row, entityRows []map[string]any, tsField string) error {
	features := make([]int, len(refs))
	for i, ref := range refs {
		features[i], _ = e.View.Feature(ref.Feature)
	}
	var buf bytes.Buffer
	pw, err := offline.NewParquetWriter(&buf, e.View, features, tsField)
	if err != nil {
		return httpx.BadRequest("bad_columns", err.Error())
	}
	keys := make([]string, len(e.View.Entities))
	err = offline.Historical(r.Context(), a.conn, e, rows, func(row offline.Row, results []agg.Result) error {
		for k, key := range e.View.Entities {
			keys[k], _ = scalar(entityRows[row.Index][key])
		}
		return pw.Write(row.Index, keys, row.TS, results)
	})
	if err != nil {
		return httpx.Unavailable("offline store unavailable", err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("finish parquet: %w", err)
	}
	w.Header().Set("Content-Type", "application/vnd.apache.parquet")
	w.Header().Set("Content-Disposition", `attachment; filename="`+e.View.Name+`.parquet"`)
	_, err = w.Write(buf.Bytes())
	return err
}

func (a *API) listViews(w http.ResponseWriter, _ *http.Request) error {
	var out []map[string]any
	for _, n := range a.catalog.Names() {
		v, _ := a.catalog.Get(n)
		out = append(out, map[string]any{"name": v.Name, "version": v.Version, "entities": v.Entities, "source": v.Source,
			"ttl": time.Duration(v.TTL).String(), "lateness": time.Duration(v.Lateness).String(), "features": v.Features})
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"views": out})
	return nil
}
