package runindex

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/services/registry/store"
)

const runsTable = "registry_runs"

var runsColumns = []string{"experiment_id", "run_id", "run_name", "user_id", "status", "lifecycle_stage",
	"start_time", "end_time", "artifact_uri", "metric_keys", "metric_values", "param_keys", "param_values",
	"tag_keys", "tag_values", "revision"}

// maxBatch bounds one ClickHouse insert.
const maxBatch = 5000

// Runs projects every write of the runs bucket into ClickHouse's registry_runs, tagged with
// its KV revision: the newest snapshot wins on merge and replays collapse. It resumes after
// the highest revision already in ClickHouse.
type Runs struct {
	kv   jetstream.KeyValue
	conn driver.Conn
	log  *zap.Logger
	progress
}

// NewRuns builds the runs projection.
func NewRuns(kv jetstream.KeyValue, conn driver.Conn, log *zap.Logger) *Runs {
	return &Runs{kv: kv, conn: conn, log: log, progress: *newProgress()}
}

// WaitFor blocks until the projection includes KV revision rev (at most timeout).
func (p *Runs) WaitFor(ctx context.Context, rev uint64, timeout time.Duration) error {
	return p.wait(ctx, rev, timeout)
}

// Run projects until ctx ends.
func (p *Runs) Run(ctx context.Context) error {
	var start uint64
	if err := p.conn.QueryRow(ctx, "SELECT max(revision) FROM "+runsTable).Scan(&start); err != nil {
		return fmt.Errorf("read runs index position: %w", err)
	}
	p.advance(start)
	var opts []jetstream.WatchOpt
	if start > 0 {
		opts = append(opts, jetstream.ResumeFromRevision(start+1))
	}
	w, err := p.kv.WatchAll(ctx, opts...)
	if err != nil {
		return fmt.Errorf("watch runs: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var lastInsert time.Time
	for {
		var first jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return p.closed(ctx)
			}
			first = e
		}
		entries, open := gather(ctx, w.Updates(), first, lastInsert)
		rows, last := p.rows(entries)
		if err := insertUntilDone(ctx, p.conn, runsTable, runsColumns, rows, p.log); err != nil {
			return nil // shutdown; the next start resumes after what ClickHouse holds
		}
		lastInsert = time.Now()
		p.advance(last)
		if !open {
			return p.closed(ctx)
		}
	}
}

// closed explains the end of the watch: shutdown (the watcher closes when ctx ends) is not
// an error.
func (p *Runs) closed(ctx context.Context) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("runs watcher closed")
}

// rows turns the newest entry of each run in entries into a row (older revisions in the
// same batch would only be replaced on merge) and returns the highest revision seen.
func (p *Runs) rows(entries []jetstream.KeyValueEntry) ([][]any, uint64) {
	newest := make(map[string]jetstream.KeyValueEntry, len(entries))
	var order []string
	var last uint64
	for _, e := range entries {
		if e == nil {
			continue
		}
		last = max(last, e.Revision())
		if e.Operation() != jetstream.KeyValuePut || !strings.HasPrefix(e.Key(), "r.") {
			continue
		}
		if _, seen := newest[e.Key()]; !seen {
			order = append(order, e.Key())
		}
		newest[e.Key()] = e
	}
	rows := make([][]any, 0, len(order))
	for _, key := range order {
		e := newest[key]
		var r store.Run
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			p.log.Error("skip undecodable run in the index", zap.String("key", key), zap.Error(err))
			continue
		}
		rows = append(rows, runRow(r, e.Revision()))
	}
	return rows, last
}

func runRow(r store.Run, rev uint64) []any {
	mk, mv := sortedMetrics(r.Metrics)
	pk, pv := sortedPairs(r.Params)
	tk, tv := sortedPairs(r.Tags)
	return []any{r.ExperimentID, r.ID, r.Name, r.UserID, r.Status, r.LifecycleStage, r.StartTime, r.EndTime,
		r.ArtifactURI, mk, mv, pk, pv, tk, tv, rev}
}

func sortedPairs(m map[string]string) ([]string, []string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = m[k]
	}
	return keys, vals
}

func sortedMetrics(m map[string]store.Metric) ([]string, []float64) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([]float64, len(keys))
	for i, k := range keys {
		vals[i] = m[k].Value
	}
	return keys, vals
}
