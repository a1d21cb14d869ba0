// Command monitor runs the Flywheel monitor service.
package main

import (
	"context"

	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/services/monitor"
)

func main() {
	var cfg monitor.Config
	app.Main(&cfg, func(ctx context.Context) error { return monitor.Run(ctx, cfg) })
}
