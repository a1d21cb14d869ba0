// Command registry runs the Flywheel registry service.
package main

import (
	"context"

	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/services/registry"
)

func main() {
	var cfg registry.Config
	app.Main(&cfg, func(ctx context.Context) error { return registry.Run(ctx, cfg) })
}
