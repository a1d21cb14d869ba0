package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// DatasetVersion is a content-addressed training set.
type DatasetVersion struct {
	ID            string            `json:"id,omitempty"`
	Name          string            `json:"name"`
	Digest        string            `json:"digest"`
	SourceStreams []string          `json:"source_streams"`
	Start         time.Time         `json:"start"`
	End           time.Time         `json:"end"`
	FeatureViews  map[string]string `json:"feature_views"`
	RowCount      int               `json:"row_count"`
}

// RecordDataset records a dataset version; the same digest returns the existing one.
func (c *Client) RecordDataset(ctx context.Context, d DatasetVersion) (DatasetVersion, error) {
	var got struct {
		Dataset DatasetVersion `json:"dataset"`
	}
	err := c.postJSON(ctx, "/v1/datasets", d, &got)
	return got.Dataset, err
}

// EnsureModel creates the registered model when it does not exist.
func (c *Client) EnsureModel(ctx context.Context, name string) error {
	err := c.postJSON(ctx, mlflow+"registered-models/create", map[string]string{"name": name}, nil)
	if IsAlreadyExists(err) {
		return nil
	}
	return err
}

// Lineage says where a model version came from.
type Lineage struct {
	RunID          string            `json:"run_id,omitempty"`
	DatasetVersion string            `json:"dataset_version,omitempty"`
	FeatureViews   map[string]string `json:"feature_views,omitempty"`
	CodeVersion    string            `json:"code_version,omitempty"`
	Trigger        string            `json:"trigger,omitempty"`
}

// Field is one input of a version's signature.
type Field struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Version is a model version as the registry answers it.
type Version struct {
	Name        string            `json:"name"`
	Version     int               `json:"version"`
	Source      string            `json:"source,omitempty"`
	RunID       string            `json:"run_id,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Lineage     *Lineage          `json:"lineage,omitempty"`
	Signature   []Field           `json:"signature,omitempty"`
	Profile     json.RawMessage   `json:"profile,omitempty"`
	Aliases     []string          `json:"aliases,omitempty"`
}

// NewVersion is what CreateVersion sends.
type NewVersion struct {
	Source      string            `json:"source"`
	RunID       string            `json:"run_id"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Lineage     *Lineage          `json:"lineage,omitempty"`
	Signature   []Field           `json:"signature,omitempty"`
	Profile     json.RawMessage   `json:"profile,omitempty"`
}

// CreateVersion registers the model's next version.
func (c *Client) CreateVersion(ctx context.Context, model string, v NewVersion) (Version, error) {
	var got struct {
		Version Version `json:"version"`
	}
	if err := c.postJSON(ctx, "/v1/models/"+url.PathEscape(model)+"/versions", v, &got); err != nil {
		return Version{}, err
	}
	if got.Version.Version == 0 {
		return Version{}, fmt.Errorf("registry created a version of %s but answered none", model)
	}
	return got.Version, nil
}

// GetVersion reads a version with its lineage, signature and profile.
func (c *Client) GetVersion(ctx context.Context, model string, version int) (Version, error) {
	var got struct {
		Version Version `json:"version"`
	}
	err := c.getJSON(ctx, "/v1/models/"+url.PathEscape(model)+"/versions/"+strconv.Itoa(version), nil, &got)
	return got.Version, err
}

// Aliases returns the model's aliases and the versions they point at (empty when the model
// has none or does not exist yet).
func (c *Client) Aliases(ctx context.Context, model string) (map[string]int, error) {
	var got struct {
		Aliases []struct {
			Alias   string `json:"alias"`
			Version int    `json:"version"`
		} `json:"aliases"`
	}
	err := c.getJSON(ctx, "/v1/models/"+url.PathEscape(model)+"/aliases", nil, &got)
	if IsNotFound(err) {
		return map[string]int{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(got.Aliases))
	for _, a := range got.Aliases {
		out[a.Alias] = a.Version
	}
	return out, nil
}

// MoveAlias points alias at version, with the reason recorded in the audit trail.
func (c *Client) MoveAlias(ctx context.Context, model, alias string, version int, reason string) error {
	return c.postJSON(ctx, "/v1/models/"+url.PathEscape(model)+"/aliases/"+url.PathEscape(alias),
		map[string]any{"version": version, "reason": reason}, nil)
}
