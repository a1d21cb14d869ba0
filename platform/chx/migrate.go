package chx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/flywheel-ml/flywheel/platform/retry"
)

// Migration is one NNNN_description.sql file.
type Migration struct {
	Version    uint32
	Name       string
	Checksum   string
	Statements []string
}

// LoadMigrations reads and orders the migrations in fsys.
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Migration
	seen := map[uint32]string{}
	for _, name := range names {
		prefix, _, ok := strings.Cut(name, "_")
		v, err := strconv.ParseUint(prefix, 10, 32)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", name)
		}
		if other, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, name, v)
		}
		seen[uint32(v)] = name
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		stmts := SplitStatements(string(body))
		if len(stmts) == 0 {
			return nil, fmt.Errorf("migration %s has no statement", name)
		}
		out = append(out, Migration{Version: uint32(v), Name: name, Checksum: hex.EncodeToString(sum[:]), Statements: stmts})
	}
	return out, nil
}

// SplitStatements splits SQL text on semicolons that end a line, dropping comment-only lines.
func SplitStatements(sql string) []string {
	var stmts []string
	var cur strings.Builder
	for line := range strings.SplitSeq(sql, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version     UInt32,
    name        String,
    checksum    String,
    applied_at  DateTime
) ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version`

// Migrate applies, in order, every migration not yet recorded in schema_migrations of the
// connection's database, and returns the names it applied. A recorded migration whose file
// changed since is an error: applied migrations are immutable, add a new one instead.
// Migrations must be idempotent (IF NOT EXISTS), so two services migrating at once is safe.
func Migrate(ctx context.Context, conn driver.Conn, fsys fs.FS) ([]string, error) {
	migrations, err := LoadMigrations(fsys)
	if err != nil {
		return nil, retry.Permanent(fmt.Errorf("load migrations: %w", err))
	}
	if err := conn.Exec(ctx, migrationsTable); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	applied := map[uint32]string{}
	rows, err := conn.Query(ctx, "SELECT version, argMax(checksum, applied_at) FROM schema_migrations GROUP BY version")
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan applied migration: %w", err)
		}
		applied[v] = sum
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}

	var done []string
	for _, m := range migrations {
		if sum, ok := applied[m.Version]; ok {
			if sum != m.Checksum {
				return done, retry.Permanent(fmt.Errorf("migration %s changed after it was applied (checksum %s, recorded %s): add a new migration instead", m.Name, m.Checksum[:12], sum[:min(12, len(sum))]))
			}
			continue
		}
		for i, stmt := range m.Statements {
			if err := conn.Exec(ctx, stmt); err != nil && !columnAlreadyAdded(stmt, err) {
				err = fmt.Errorf("migration %s statement %d: %w", m.Name, i+1, err)
				if isServerException(err) {
					err = retry.Permanent(err) // the server refused the SQL itself; retrying cannot help
				}
				return done, err
			}
		}
		err := Insert(ctx, conn, "schema_migrations", []string{"version", "name", "checksum", "applied_at"},
			[][]any{{m.Version, m.Name, m.Checksum, time.Now().UTC()}})
		if err != nil {
			return done, fmt.Errorf("record migration %s: %w", m.Name, err)
		}
		done = append(done, m.Name)
	}
	return done, nil
}

// columnAlreadyAdded reports whether err is the server refusing an ALTER TABLE … ADD COLUMN
// because the column exists. ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS, so a migration
// adds one column per statement and this makes it idempotent: a re-run after a crash between
// the statement and its record, or services migrating at the same time, find it done. Codes:
// 44 (18.16: "column with this name already exists"), 15 (DUPLICATE_COLUMN, later releases).
func columnAlreadyAdded(stmt string, err error) bool {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) || (ex.Code != 44 && ex.Code != 15) || !strings.Contains(ex.Message, "already exists") {
		return false
	}
	upper := strings.ToUpper(strings.Join(strings.Fields(stmt), " "))
	return strings.HasPrefix(upper, "ALTER TABLE ") && strings.Count(upper, " ADD COLUMN ") == 1 && !strings.Contains(upper, ",")
}

// isServerException reports whether err is the server's answer to a query (bad SQL, a
// missing table) rather than a failure to reach it.
func isServerException(err error) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex)
}
