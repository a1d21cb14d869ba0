// Package k8s holds Flywheel's Kubernetes manifests (a kustomize base in base/ and an example
// overlay in overlays/example) and the tests that build them with kustomize and check them
// against the services' code. See README.md.
//
// Kustomize reads only files under a kustomization's root, so the ConfigMaps of stream schemas,
// feature views and training specs are generated from copies of the repository's schemas/
// files kept in base/schemas/. Refresh the copies after changing schemas/ (the tests fail
// until they match):
//
//	go generate ./deploy/k8s/
package k8s

//go:generate go run ./cmd/syncschemas
