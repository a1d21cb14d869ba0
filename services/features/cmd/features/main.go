// Command features runs the Flywheel features service.
package main

import (
	"context"

	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/services/features"
)

func main() {
	var cfg features.Config
	app.Main(&cfg, func(ctx context.Context) error { return features.Run(ctx, cfg) })
}
