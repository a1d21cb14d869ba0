package features_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Bad lookups get a status and a code that say what is wrong, on both lookup shapes.
func TestLookupErrors(t *testing.T) {
	s := start(t)
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf("c-%d", i)
	}
	for _, tc := range []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"unknown feature", "/get-online-features", `{"features":["` + s.view + `:nope"],"entities":{"card_id":["c-1"]}}`, 404, "unknown_feature"},
		{"unknown feature service", "/get-online-features", `{"feature_service":"nope","entities":{"card_id":["c-1"]}}`, 404, "unknown_feature_service"},
		{"no features", "/get-online-features", `{"entities":{"card_id":["c-1"]}}`, 400, "no_features"},
		{"missing join key", "/get-online-features", `{"feature_service":"` + s.view + `","entities":{"user_id":["u-1"]}}`, 400, "missing_join_key"},
		{"fractional join key", "/get-online-features", `{"feature_service":"` + s.view + `","entities":{"card_id":[1.5]}}`, 400, "bad_join_key"},
		{"join key beyond 2^53", "/get-online-features", `{"feature_service":"` + s.view + `","entities":{"card_id":[18014398509481984]}}`, 400, "bad_join_key"},
		{"too many entities", "/get-online-features", `{"feature_service":"` + s.view + `","entities":{"card_id":` + jsonOf(many) + `}}`, 413, "too_many_entities"},
		{"not JSON", "/get-online-features", `{"feature_service":`, 400, "invalid_json"},
		{"rows: no entities", "/v1/features/online", `{"feature_service":"` + s.view + `","entities":[]}`, 400, "no_entities"},
		{"rows: extra key", "/v1/features/online", `{"feature_service":"` + s.view + `","entities":[{"card_id":"c-1","x":"y"}]}`, 400, "bad_entity"},
		{"rows: object join key", "/v1/features/online", `{"feature_service":"` + s.view + `","entities":[{"card_id":{"a":1}}]}`, 400, "bad_join_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(s.url+tc.path, "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tc.status || body.Error.Code != tc.code || body.Error.Message == "" {
				t.Fatalf("want %d %s, got %d %+v", tc.status, tc.code, resp.StatusCode, body.Error)
			}
		})
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
