// Command ingest runs the Flywheel ingest service.
package main

import (
	"context"

	"github.com/flywheel-ml/flywheel/platform/app"
	"github.com/flywheel-ml/flywheel/services/ingest"
)

func main() {
	var cfg ingest.Config
	app.Main(&cfg, func(ctx context.Context) error { return ingest.Run(ctx, cfg) })
}
