package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/flywheel-ml/flywheel/platform/httpx"
)

// rowsRequest is the native lookup: one object per entity, answered row by row, which is
// the shape a model's input takes (Feast's shape is column-oriented).
type rowsRequest struct {
	Features       []string         `json:"features"`
	FeatureService string           `json:"feature_service"`
	Entities       []map[string]any `json:"entities"`
	At             *time.Time       `json:"at"`
}

type row struct {
	Entity          map[string]any `json:"entity"`
	Values          []any          `json:"values"`
	Statuses        []string       `json:"statuses"`
	EventTimestamps []*time.Time   `json:"event_timestamps"`
}

// onlineRows answers POST /v1/features/online: values positionally aligned with
// feature_names, plus the version of every view read, so a caller can log which definitions
// produced the values it used.
func (a *API) onlineRows(w http.ResponseWriter, r *http.Request) error {
	var req rowsRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	refs, err := a.resolveFeatures(req.Features, req.FeatureService)
	if err != nil {
		return err
	}
	if len(req.Entities) == 0 {
		return httpx.BadRequest("no_entities", "entities holds no entity; send [{\"card_id\": \"c-1\"}, ...]")
	}
	v, _ := a.catalog.Get(refs[0].View)
	columns := make(map[string][]any, len(v.Entities))
	for i, e := range req.Entities {
		if len(e) != len(v.Entities) {
			return httpx.BadRequest("bad_entity", "entity "+strconv.Itoa(i)+" must hold exactly the join keys of the views")
		}
		for _, k := range v.Entities {
			columns[k] = append(columns[k], e[k])
		}
	}
	keys, _, err := a.entityKeys(refs, columns)
	if err != nil {
		return err
	}
	values, err := a.lookup(r.Context(), refs, keys, req.At)
	if err != nil {
		return err
	}
	names := make([]string, len(refs))
	versions := map[string]string{}
	for i, ref := range refs {
		names[i] = ref.String()
		view, _ := a.catalog.Get(ref.View)
		versions[ref.View] = view.Version
	}
	rows := make([]row, len(keys))
	for ei := range keys {
		rw := row{Entity: req.Entities[ei], Values: make([]any, len(refs)), Statuses: make([]string, len(refs)), EventTimestamps: make([]*time.Time, len(refs))}
		for ri := range refs {
			val := values[ei][ri]
			rw.Values[ri], rw.Statuses[ri] = val.Value, val.Status.String()
			if !val.EventTime.IsZero() {
				ts := val.EventTime
				rw.EventTimestamps[ri] = &ts
			}
		}
		rows[ei] = rw
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"feature_names": names, "view_versions": versions, "rows": rows})
	return nil
}
