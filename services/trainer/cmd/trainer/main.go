// Command trainer runs the Flywheel trainer service.
package main

import (
	"context"

	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/services/trainer"
)

func main() {
	var cfg trainer.Config
	app.Main(&cfg, func(ctx context.Context) error { return trainer.Run(ctx, cfg) })
}
