package registry_test

import (
	"testing"
)

// experiments/search and registered-models/search: filters, order, view type and pages over
// the in-memory path, with MLflow's shapes.
func TestExperimentAndModelSearch(t *testing.T) {
	s := start(t)
	for _, name := range []string{"fraud-a", "fraud-b", "churn"} {
		s.ok("POST", api+"experiments/create", map[string]any{"name": name, "tags": []map[string]string{{"key": "team", "value": name[:5]}}}, nil)
	}
	var churn struct {
		Experiment struct {
			ExperimentID string `json:"experiment_id"`
		} `json:"experiment"`
	}
	s.ok("GET", api+"experiments/get-by-name", map[string]string{"experiment_name": "churn"}, &churn)
	s.ok("POST", api+"experiments/delete", map[string]any{"experiment_id": churn.Experiment.ExperimentID}, nil)

	type expPage struct {
		Experiments []struct {
			Name string `json:"name"`
		} `json:"experiments"`
		NextPageToken string `json:"next_page_token"`
	}
	var page expPage
	s.ok("POST", api+"experiments/search", map[string]any{"filter": "name LIKE 'fraud%'", "order_by": []string{"name DESC"}, "max_results": 1}, &page)
	if len(page.Experiments) != 1 || page.Experiments[0].Name != "fraud-b" || page.NextPageToken == "" {
		t.Fatalf("first page: %+v", page)
	}
	token := page.NextPageToken
	page = expPage{}
	s.ok("POST", api+"experiments/search", map[string]any{"filter": "name LIKE 'fraud%'", "order_by": []string{"name DESC"}, "max_results": 1, "page_token": token}, &page)
	if len(page.Experiments) != 1 || page.Experiments[0].Name != "fraud-a" || page.NextPageToken != "" {
		t.Fatalf("second page: %+v", page)
	}
	page = expPage{}
	s.ok("POST", api+"experiments/search", map[string]any{"view_type": "DELETED_ONLY"}, &page)
	if len(page.Experiments) != 1 || page.Experiments[0].Name != "churn" {
		t.Fatalf("deleted experiments: %+v", page)
	}
	page = expPage{}
	s.ok("POST", api+"experiments/search", map[string]any{"filter": "tags.team = 'fraud'"}, &page)
	if len(page.Experiments) != 2 {
		t.Fatalf("by tag: %+v", page)
	}
	s.fails(promoterToken, "POST", api+"experiments/search", map[string]any{"filter": "metrics.auc > 1"}, 400, "INVALID_PARAMETER_VALUE")

	for _, name := range []string{"fraud", "fraud-shadow", "churn"} {
		s.ok("POST", api+"registered-models/create", map[string]any{"name": name}, nil)
	}
	s.ok("POST", api+"registered-models/set-tag", map[string]any{"name": "churn", "key": "owner", "value": "crm"}, nil)
	var models struct {
		RegisteredModels []struct {
			Name string `json:"name"`
		} `json:"registered_models"`
	}
	s.ok("GET", api+"registered-models/search", map[string]string{"filter": "name ILIKE 'FRAUD%'"}, &models)
	if len(models.RegisteredModels) != 2 || models.RegisteredModels[0].Name != "fraud" {
		t.Fatalf("models by name: %+v", models)
	}
	models.RegisteredModels = nil
	s.ok("GET", api+"registered-models/search", map[string]string{"filter": "tags.owner = 'crm'"}, &models)
	if len(models.RegisteredModels) != 1 || models.RegisteredModels[0].Name != "churn" {
		t.Fatalf("models by tag: %+v", models)
	}
	s.ok("POST", api+"registered-models/rename", map[string]any{"name": "fraud-shadow", "new_name": "fraud-canary"}, nil)
	s.fails(promoterToken, "GET", api+"registered-models/get", map[string]string{"name": "fraud-shadow"}, 404, "RESOURCE_DOES_NOT_EXIST")
	s.ok("DELETE", api+"registered-models/delete", map[string]any{"name": "fraud-canary"}, nil)
	s.fails(promoterToken, "GET", api+"registered-models/get", map[string]string{"name": "fraud-canary"}, 404, "RESOURCE_DOES_NOT_EXIST")
}
