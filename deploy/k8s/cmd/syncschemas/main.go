// Command syncschemas refreshes deploy/k8s/base/schemas from the repository's schemas/ (the
// stream schemas, feature views and training specs the kustomize base ships as ConfigMaps).
// Run it with `go generate ./deploy/k8s/` from the repository root.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	k8s "github.com/flywheel-ml/flywheel/deploy/k8s"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "syncschemas:", err)
		os.Exit(1)
	}
}

func run() error {
	root, err := k8s.RepoRoot(".")
	if err != nil {
		return err
	}
	want, err := k8s.SchemaCopies(root)
	if err != nil {
		return err
	}
	dir := filepath.Join(root, "deploy", "k8s", filepath.FromSlash(k8s.SchemaDir))
	if err := k8s.SyncSchemas(dir, want); err != nil {
		return err
	}
	fmt.Printf("syncschemas: %d files in %s\n", len(want), dir)
	return nil
}
