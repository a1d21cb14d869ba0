package client

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
)

// artifactPath turns a run's artifact URI (mlflow-artifacts:/<exp>/<run>/artifacts) and a
// relative path into the proxy's URL path.
func artifactPath(artifactURI, rel string) (string, error) {
	root, ok := strings.CutPrefix(artifactURI, "mlflow-artifacts:")
	if !ok {
		return "", fmt.Errorf("artifact uri %q is not an mlflow-artifacts: uri", artifactURI)
	}
	segs := strings.Split(strings.Trim(root+"/"+rel, "/"), "/")
	for i, s := range segs {
		segs[i] = urlPathEscape(s)
	}
	return "/api/2.0/mlflow-artifacts/artifacts/" + strings.Join(segs, "/"), nil
}

func urlPathEscape(s string) string {
	return strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23", " ", "%20").Replace(s)
}

// PutArtifact stores data at rel under the run's artifact root.
func (c *Client) PutArtifact(ctx context.Context, artifactURI, rel string, data []byte) error {
	p, err := artifactPath(artifactURI, rel)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPut, p, nil, bytes.NewReader(data), "application/octet-stream", nil, nil)
}

// GetArtifact reads the artifact at rel under artifactURI (a run's artifact root, or a model
// version's source); the registry verifies its digest before answering.
func (c *Client) GetArtifact(ctx context.Context, artifactURI, rel string) ([]byte, error) {
	p, err := artifactPath(artifactURI, rel)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := c.do(ctx, http.MethodGet, p, nil, nil, "", &buf, nil); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
