package httpapi

import (
	"sort"

	"github.com/flywheel-ml/flywheel/services/registry/search"
)

// searchRequest is what every MLflow search call takes: filter, order, page token and
// max_results, validated against the searched entity's schema.
type searchRequest struct {
	filter        search.Filter
	orders        []search.Order
	offset, limit int
}

func readSearch(p *params, schema *search.Schema, defLimit, maxLimit int64) (searchRequest, error) {
	var req searchRequest
	var err error
	if req.limit, err = p.maxResults(defLimit, maxLimit); err != nil {
		return req, err
	}
	if req.offset, err = readPageToken(p); err != nil {
		return req, err
	}
	req.filter, req.orders, err = parseSearch(p, schema)
	return req, err
}

// searchPage applies req to records held in memory (experiments, models and versions are
// few; runs are searched in ClickHouse) and returns the page and the next page's token.
func searchPage[R search.Record](req searchRequest, records []R) ([]R, string) {
	var matched []R
	for _, r := range records {
		if req.filter.Match(r) {
			matched = append(matched, r)
		}
	}
	sort.SliceStable(matched, func(i, j int) bool { return search.Less(req.orders, matched[i], matched[j]) })
	items, more := page(matched, req.offset, req.limit)
	return items, nextPageToken(req.offset, len(items), req.limit, more)
}
