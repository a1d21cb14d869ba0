// Command serving runs the Flywheel serving service.
package main

import (
	"context"

	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/services/serving"
)

func main() {
	var cfg serving.Config
	app.Main(&cfg, func(ctx context.Context) error { return serving.Run(ctx, cfg) })
}
