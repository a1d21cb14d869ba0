package registry_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
)

// A version registered with lineage shows it (also as MLflow tags); champion moves need the
// promote scope, are audited with who and why, and roll back in one call; the changes reach
// the Kafka topic registry.
func TestLineageAuditedMovesAndEvents(t *testing.T) {
	s := start(t)
	model := testenv.Unique(t, "fraud")
	var exp struct {
		ExperimentID string `json:"experiment_id"`
	}
	s.ok("POST", api+"experiments/create", map[string]any{"name": "lineage"}, &exp)
	var run struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	s.ok("POST", api+"runs/create", map[string]any{"experiment_id": exp.ExperimentID}, &run)
	runID := run.Run.Info.RunID

	var ds struct {
		Dataset struct {
			ID string `json:"id"`
		} `json:"dataset"`
	}
	dataset := map[string]any{"name": "fraud-train", "digest": strings.Repeat("ab", 32), "source_streams": []string{"transactions", "fraud_labels"},
		"start": "2026-11-01T00:00:00Z", "end": "2026-11-21T00:00:00Z", "feature_views": map[string]string{"card_activity": "9f2c"}, "row_count": 120000}
	s.ok("POST", "/v1/datasets", dataset, &ds)
	var again struct {
		Dataset struct {
			ID string `json:"id"`
		} `json:"dataset"`
	}
	s.ok("POST", "/v1/datasets", dataset, &again)
	if ds.Dataset.ID == "" || again.Dataset.ID != ds.Dataset.ID {
		t.Fatalf("the same content must be one dataset version: %q then %q", ds.Dataset.ID, again.Dataset.ID)
	}

	s.ok("POST", api+"registered-models/create", map[string]any{"name": model}, nil)
	for range 2 {
		s.ok("POST", "/v1/models/"+model+"/versions", map[string]any{"source": "runs:/" + runID + "/model", "run_id": runID,
			"lineage": map[string]any{"dataset_version": ds.Dataset.ID, "feature_views": map[string]string{"card_activity": "9f2c"},
				"code_version": "v0.1.0 abc123", "trigger": "drift:d-42"},
			"signature": []map[string]string{{"name": "amount", "type": "double"}},
			"profile":   map[string]any{"amount": map[string]any{"mean": 42.5}}}, nil)
	}
	var v struct {
		Version struct {
			Lineage struct {
				RunID, DatasetVersion, CodeVersion, Trigger string
			} `json:"lineage"`
			Tags    map[string]string `json:"tags"`
			Profile json.RawMessage   `json:"profile"`
		} `json:"version"`
	}
	s.ok("GET", "/v1/models/"+model+"/versions/2", nil, &v)
	if v.Version.Lineage.Trigger != "drift:d-42" || v.Version.Tags["flywheel.dataset_version"] != ds.Dataset.ID ||
		v.Version.Tags["flywheel.feature_views"] != "card_activity@9f2c" || len(v.Version.Profile) == 0 {
		t.Fatalf("lineage of version 2: %+v", v.Version)
	}
	var bad struct {
		Error struct{ Code string } `json:"error"`
	}
	if code := s.call(promoterToken, "POST", "/v1/models/"+model+"/versions", map[string]any{"lineage": map[string]any{"dataset_version": "ds-missing"}}, &bad); code != 404 {
		t.Fatalf("a version naming an unknown dataset: want 404, got %d %+v", code, bad)
	}

	if code := s.call(writerToken, "POST", "/v1/models/"+model+"/aliases/champion", map[string]any{"version": 1}, nil); code != 403 {
		t.Fatalf("moving champion without promote: want 403, got %d", code)
	}
	s.ok("POST", "/v1/models/"+model+"/aliases/champion", map[string]any{"version": 1, "reason": "first model"}, nil)
	s.ok("POST", "/v1/models/"+model+"/aliases/champion", map[string]any{"version": 2, "reason": "auc +0.02"}, nil)
	var back struct {
		Move struct {
			Version, Previous int
		} `json:"move"`
	}
	s.ok("POST", "/v1/models/"+model+"/aliases/champion/rollback", map[string]any{"reason": "canary errors"}, &back)
	if back.Move.Version != 1 || back.Move.Previous != 2 {
		t.Fatalf("rollback: %+v", back)
	}
	var history struct {
		Moves []struct {
			Version, Previous int
			Actor, Reason     string
		} `json:"moves"`
	}
	s.ok("GET", "/v1/models/"+model+"/aliases/history", nil, &history)
	if len(history.Moves) != 3 || history.Moves[2].Reason != "rollback: canary errors" || !strings.HasPrefix(history.Moves[0].Actor, "token:") ||
		history.Moves[1].Previous != 1 {
		t.Fatalf("audit trail: %+v", history.Moves)
	}

	// The Kafka topic registry carries the changes, keyed by model.
	want := map[schemas.RegistryEventType]int{schemas.RegistryModelCreated: 1, schemas.RegistryVersionCreated: 2, schemas.RegistryAliasMoved: 3}
	kcfg := testenv.Kafka(t)
	ctx, cancel := context.WithTimeout(testenv.Context(t), 15*time.Second)
	defer cancel()
	var got map[schemas.RegistryEventType]int
	for !sameCounts(got, want) {
		if ctx.Err() != nil {
			t.Fatalf("registry topic for %s: got %v, want %v", model, got, want)
		}
		got = map[schemas.RegistryEventType]int{}
		for p := range 3 {
			end, err := lastOffset(ctx, kcfg.Brokers[0], p)
			if err != nil {
				t.Fatal(err)
			}
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: kcfg.Brokers, Topic: schemas.TopicRegistry, Partition: p, MaxWait: 100 * time.Millisecond})
			for next := int64(0); next < end; {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					t.Fatalf("read registry topic: %v", err)
				}
				next = m.Offset + 1
				var ev schemas.RegistryEvent
				if string(m.Key) == model && json.Unmarshal(m.Value, &ev) == nil {
					got[ev.Type]++
				}
			}
			r.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func sameCounts(a, b map[schemas.RegistryEventType]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func lastOffset(ctx context.Context, broker string, partition int) (int64, error) {
	conn, err := kafka.DialLeader(ctx, "tcp", broker, schemas.TopicRegistry, partition)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return conn.ReadLastOffset()
}

// A restarted registry resumes its ClickHouse projections: runs and points logged before and
// after the restart are all searchable, none twice.
func TestRestartResumesTheIndex(t *testing.T) {
	first := start(t)
	var exp struct {
		ExperimentID string `json:"experiment_id"`
	}
	first.ok("POST", api+"experiments/create", map[string]any{"name": "restart"}, &exp)
	logRun := func(s *service, auc float64) string {
		var run struct {
			Run struct {
				Info struct {
					RunID string `json:"run_id"`
				} `json:"info"`
			} `json:"run"`
		}
		s.ok("POST", api+"runs/create", map[string]any{"experiment_id": exp.ExperimentID}, &run)
		s.ok("POST", api+"runs/log-metric", map[string]any{"run_id": run.Run.Info.RunID, "key": "auc", "value": auc, "step": 1}, nil)
		return run.Run.Info.RunID
	}
	logRun(first, 0.7)
	logRun(first, 0.8)
	first.stop()
	second := startWith(t, first.prefix, first.database)
	newest := logRun(second, 0.9)
	var found struct {
		Runs []struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"runs"`
	}
	second.ok("POST", api+"runs/search", map[string]any{"experiment_ids": []string{exp.ExperimentID}, "order_by": []string{"metrics.auc DESC"}}, &found)
	if len(found.Runs) != 3 || found.Runs[0].Info.RunID != newest {
		t.Fatalf("after a restart: %+v", found)
	}
}
