package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flywheel-ml/flywheel/services/registry/search"
)

// Any request body either reads as parameters or is refused with INVALID_PARAMETER_VALUE;
// no accessor panics, and a refused body never yields values.
func FuzzParams(f *testing.F) {
	for _, seed := range []string{
		`{"run_id":"r1","metrics":[{"key":"auc","value":0.9,"timestamp":"1700000000000","step":3}],"params":[{"key":"lr","value":"0.1"}]}`,
		`{"max_results":"10","page_token":"eyJvZmZzZXQiOjJ9","order_by":["metrics.auc DESC"],"filter":"metrics.auc > 0.5"}`,
		`{"value":"NaN"}`, `{"step":1e30}`, `[1,2]`, `{"name":null}`, ``, `{`, `{"version":-1}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/api/2.0/mlflow/runs/log-batch", strings.NewReader(body))
		p, err := readParams(r)
		if err != nil {
			if me, _ := toMLflow(err); me.Code != codeInvalid || me.Status != http.StatusBadRequest {
				t.Fatalf("a bad body must be INVALID_PARAMETER_VALUE, got %+v", me)
			}
			return
		}
		_, _ = p.str("run_id")
		_, _ = p.required("name")
		_, _, _ = p.int64("step")
		_, _, _ = p.float("value")
		_, _ = p.strs("order_by")
		_, _ = p.maxResults(100, 1000)
		_, _ = readPageToken(p)
		var metrics []batchMetric
		_ = p.decode("metrics", &metrics)
		var whole struct {
			Metrics []batchMetric `json:"metrics"`
		}
		_ = p.into(&whole)
		if _, err := readSearch(p, search.Runs, 100, 1000); err != nil {
			if me, _ := toMLflow(err); me.Code != codeInvalid {
				t.Fatalf("a bad search must be INVALID_PARAMETER_VALUE, got %+v (%v)", me, err)
			}
		}
	})
}
