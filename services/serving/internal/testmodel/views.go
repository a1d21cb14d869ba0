package testmodel

import (
	"github.com/flywheel-ml/flywheel/services/features"
	"github.com/flywheel-ml/flywheel/services/features/online"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

// Views resolves feature references against the shipped feature views.
type Views struct {
	*online.Reader
	Catalog *views.Catalog
}

// ShippedViews returns the resolver over the shipped views (no store behind it).
func ShippedViews() Views {
	cat, err := features.LoadViews("")
	if err != nil {
		panic(err)
	}
	return Views{Reader: online.NewReader(nil, cat), Catalog: cat}
}

// JoinKeys returns a view's entity keys.
func (v Views) JoinKeys(view string) ([]string, bool) {
	vw, ok := v.Catalog.Get(view)
	if !ok {
		return nil, false
	}
	return vw.Entities, true
}
