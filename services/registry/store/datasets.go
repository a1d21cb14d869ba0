package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// DatasetVersion is a training set as Flywheel built it: what went in, so a model version's
// lineage can name it and a rebuild can be compared with it.
type DatasetVersion struct {
	ID            string            `json:"id"` // "ds-" + the first 16 hex digits of Digest
	Name          string            `json:"name"`
	Digest        string            `json:"digest"` // sha256 of the content, hex
	SourceStreams []string          `json:"source_streams"`
	Start         time.Time         `json:"start"`
	End           time.Time         `json:"end"`
	FeatureViews  map[string]string `json:"feature_views,omitempty"` // view → version hash
	RowCount      int64             `json:"row_count"`
	CreatedAt     time.Time         `json:"created_at"`
}

func datasetKey(id string) string { return "d." + id }

// CreateDataset records a dataset version. Its id derives from the content digest, so
// recording the same content again returns the existing version.
func (s *Store) CreateDataset(ctx context.Context, d DatasetVersion) (DatasetVersion, error) {
	if d.Name == "" {
		return DatasetVersion{}, invalidf("a dataset version needs a name")
	}
	if d.Digest == "" {
		d.Digest = d.descriptionDigest()
	}
	if b, err := hex.DecodeString(d.Digest); err != nil || len(b) != sha256.Size {
		return DatasetVersion{}, invalidf("dataset digest must be a hex sha256, got '%s'", d.Digest)
	}
	if !d.End.IsZero() && d.End.Before(d.Start) {
		return DatasetVersion{}, invalidf("dataset time range ends (%s) before it starts (%s)", d.End, d.Start)
	}
	if d.RowCount < 0 {
		return DatasetVersion{}, invalidf("dataset row_count must not be negative")
	}
	d.ID = "ds-" + d.Digest[:16]
	d.CreatedAt = s.now().UTC()
	sort.Strings(d.SourceStreams)
	_, err := createJSON(ctx, s.datasets, datasetKey(d.ID), "dataset "+d.ID, d)
	if errors.Is(err, ErrAlreadyExists) {
		return s.GetDataset(ctx, d.ID)
	}
	return d, err
}

// descriptionDigest hashes the description when the caller has no content hash.
func (d DatasetVersion) descriptionDigest() string {
	c := d
	c.ID, c.Digest, c.CreatedAt = "", "", time.Time{}
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// GetDataset returns a dataset version.
func (s *Store) GetDataset(ctx context.Context, id string) (DatasetVersion, error) {
	d, _, err := getJSON[DatasetVersion](ctx, s.datasets, datasetKey(id), "dataset "+id)
	if errors.Is(err, ErrNotFound) {
		return d, fmt.Errorf("dataset version %s not found: %w", id, ErrNotFound)
	}
	return d, err
}
