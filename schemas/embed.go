package schemas

import (
	"embed"
	"io/fs"
)

//go:embed streams/*.json
var streamFiles embed.FS

//go:embed features/*.yaml
var featureFiles embed.FS

//go:embed models/*.yaml
var modelFiles embed.FS

//go:embed clickhouse/*.sql
var migrationFiles embed.FS

// Streams is the shipped stream catalog: one JSON Schema per stream, named <stream>.json.
func Streams() fs.FS { return sub(streamFiles, "streams") }

// FeatureViews is the shipped feature view definitions, one YAML file per view.
func FeatureViews() fs.FS { return sub(featureFiles, "features") }

// Models returns the shipped training specs (<model>.yaml; see package modelspec).
func Models() fs.FS { return sub(modelFiles, "models") }

// ClickHouseMigrations is the ordered migrations, named NNNN_description.sql.
func ClickHouseMigrations() fs.FS { return sub(migrationFiles, "clickhouse") }

func sub(f embed.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the directory is embedded at compile time; this cannot fail
	}
	return s
}
