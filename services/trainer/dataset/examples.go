// Package dataset builds a model's training set without training-serving skew: one row per
// labelled prediction event, holding exactly what serving had when it scored that event —
// the event's own request-time fields, and the feature store's values as of the event time
// *before the event itself was applied* — plus the label that arrived later.
//
// The feature store reads "event time <= t", so a read at the prediction time t would
// include the event being predicted (it was applied to the state after serving scored it).
// Rows therefore read the features at t - 1 ms: every event strictly before the prediction,
// none at or after it. The leakage check then verifies that no feature value comes from an
// event at or after t, and fails the build loudly if one does.
package dataset

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/flywheel-ml/flywheel/schemas/modelspec"
)

// LoggedEvent is one event of the event log (the ClickHouse events table).
type LoggedEvent struct {
	EventID string
	Entity  string
	TimeMS  int64
	Payload []byte // the event's JSON object
}

// Example is one labelled prediction event.
type Example struct {
	EventID string
	Entity  string
	TimeMS  int64          // the prediction time: the event's event time
	Fields  map[string]any // the event's request-time fields, as decoded from its JSON
	Label   float64
}

// JoinStats counts what the join kept and why it dropped the rest.
type JoinStats struct {
	Labels          int `json:"labels"`
	Joined          int `json:"joined"`
	NoEvent         int `json:"labels_without_event"`  // the named event is not in the window
	BeyondHorizon   int `json:"labels_beyond_horizon"` // arrived later than label.horizon
	BadLabel        int `json:"labels_unreadable"`     // the label value is missing or not a boolean/number
	DuplicateLabels int `json:"labels_superseded"`     // an older label of the same event
}

// Join pairs each label with the prediction event it names (label.event_id_field), keeping the
// newest label per event, and returns the examples in prediction-time order (event id breaks
// ties, so the order — and everything built from it — is deterministic).
func Join(spec *modelspec.Spec, events, labels []LoggedEvent) ([]Example, JoinStats, error) {
	var st JoinStats
	byID := make(map[string]*LoggedEvent, len(events))
	for i := range events {
		byID[events[i].EventID] = &events[i]
	}
	type chosen struct {
		label float64
		at    int64
	}
	picked := map[string]chosen{}
	horizon := time.Duration(spec.Label.Horizon).Milliseconds()
	for _, l := range labels {
		st.Labels++
		var obj map[string]any
		if err := json.Unmarshal(l.Payload, &obj); err != nil {
			st.BadLabel++
			continue
		}
		id, _ := obj[spec.Label.EventIDField].(string)
		ev, ok := byID[id]
		if !ok {
			st.NoEvent++
			continue
		}
		y, ok := labelValue(obj[spec.Label.Field])
		if !ok {
			st.BadLabel++
			continue
		}
		if l.TimeMS-ev.TimeMS > horizon {
			st.BeyondHorizon++
			continue
		}
		if prev, dup := picked[id]; dup {
			st.DuplicateLabels++
			if prev.at > l.TimeMS {
				continue
			}
		}
		picked[id] = chosen{label: y, at: l.TimeMS}
	}
	out := make([]Example, 0, len(picked))
	for id, c := range picked {
		ev := byID[id]
		var fields map[string]any
		if err := json.Unmarshal(ev.Payload, &fields); err != nil {
			return nil, st, fmt.Errorf("prediction event %s: %w", id, err)
		}
		out = append(out, Example{EventID: id, Entity: ev.Entity, TimeMS: ev.TimeMS, Fields: fields, Label: c.label})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].TimeMS != out[j].TimeMS {
			return out[i].TimeMS < out[j].TimeMS
		}
		return out[i].EventID < out[j].EventID
	})
	st.Joined = len(out)
	return out, st, nil
}

// labelValue reads a boolean or numeric label.
func labelValue(v any) (float64, bool) {
	switch x := v.(type) {
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case string: // numbers sent as strings
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	return 0, false
}
