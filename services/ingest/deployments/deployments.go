// Package deployments records which version of each stream schema is deployed (ClickHouse
// table stream_schemas) and refuses a catalog whose changes are backward-incompatible with it.
package deployments

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/services/ingest/catalog"
)

// ErrIncompatible is returned when a stream's schema cannot replace the deployed one.
var ErrIncompatible = errors.New("backward-incompatible stream schema change")

// Finding is the verdict on one stream.
type Finding struct {
	Stream          string
	Version         int
	DeployedVersion int // 0 when the stream was never deployed
	Status          string
	Problems        []string
}

// Statuses of a finding.
const (
	StatusNew          = "new"
	StatusUnchanged    = "unchanged"
	StatusCompatible   = "compatible change"
	StatusIncompatible = "incompatible change"
)

// Latest returns the last deployed schema of every stream that has one.
func Latest(ctx context.Context, conn driver.Conn) (map[string]*catalog.Stream, error) {
	rows, err := conn.Query(ctx, `SELECT stream, argMax(schema, version) FROM stream_schemas GROUP BY stream`)
	if err != nil {
		return nil, fmt.Errorf("read deployed stream schemas: %w", err)
	}
	defer rows.Close()
	out := map[string]*catalog.Stream{}
	for rows.Next() {
		var name, raw string
		if err := rows.Scan(&name, &raw); err != nil {
			return nil, err
		}
		s, err := catalog.Compile(name, []byte(raw))
		if err != nil {
			return nil, fmt.Errorf("deployed schema of %s: %w", name, err)
		}
		out[name] = s
	}
	return out, rows.Err()
}

// Check compares every stream of cat with its deployed version.
func Check(cat *catalog.Catalog, deployed map[string]*catalog.Stream) []Finding {
	var out []Finding
	for _, s := range cat.Streams() {
		f := Finding{Stream: s.Name, Version: s.Meta.Version}
		d, ok := deployed[s.Name]
		switch {
		case !ok:
			f.Status = StatusNew
		case d.Fingerprint == s.Fingerprint:
			f.Status, f.DeployedVersion = StatusUnchanged, d.Meta.Version
		default:
			f.DeployedVersion = d.Meta.Version
			if f.Problems = catalog.Incompatibilities(d, s); len(f.Problems) > 0 {
				f.Status = StatusIncompatible
			} else {
				f.Status = StatusCompatible
			}
		}
		out = append(out, f)
	}
	return out
}

// Deploy checks cat against what is deployed and records the new and changed schemas. With
// force, incompatible changes are recorded too (an operator's explicit decision).
func Deploy(ctx context.Context, conn driver.Conn, cat *catalog.Catalog, force bool) ([]Finding, error) {
	deployed, err := Latest(ctx, conn)
	if err != nil {
		return nil, err
	}
	findings := Check(cat, deployed)
	var bad []string
	var rows [][]any
	for _, f := range findings {
		if f.Status == StatusIncompatible && !force {
			bad = append(bad, fmt.Sprintf("%s v%d (deployed v%d): %s", f.Stream, f.Version, f.DeployedVersion, strings.Join(f.Problems, "; ")))
			continue
		}
		if f.Status != StatusUnchanged {
			s, _ := cat.Get(f.Stream)
			rows = append(rows, []any{s.Name, uint32(s.Meta.Version), s.Fingerprint, string(s.Raw), time.Now().UTC()})
		}
	}
	if len(bad) > 0 {
		return findings, fmt.Errorf("%w: %s", ErrIncompatible, strings.Join(bad, " | "))
	}
	if err := chx.Insert(ctx, conn, "stream_schemas", []string{"stream", "version", "fingerprint", "schema", "deployed_at"}, rows); err != nil {
		return findings, err
	}
	return findings, nil
}
