package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// apiClient calls the services' HTTP APIs.
type apiClient struct {
	services map[string]string
	token    string
	http     *http.Client
}

func (c *apiClient) do(ctx context.Context, service, method, path string, body any, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.services[service]+path, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s at %s is unreachable: %w", service, c.services[service], err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s %s: %d %s", service, method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s %s: %w", service, method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// trainRun is the trainer's view of a run.
type trainRun struct {
	ID      string `json:"id"`
	Stage   string `json:"stage"`
	Trigger struct {
		Kind    string `json:"kind"`
		EventID string `json:"event_id"`
	} `json:"trigger"`
	Started       time.Time `json:"started_at"`
	Ended         time.Time `json:"ended_at"`
	Error         string    `json:"error"`
	RegistryRunID string    `json:"registry_run_id"`
	ModelVersion  int       `json:"model_version"`
	Promoted      bool      `json:"promoted"`
}

// train asks for a run and waits for its end.
func (c *apiClient) train(ctx context.Context, model string, timeout time.Duration) (trainRun, error) {
	var started struct {
		Run trainRun `json:"run"`
	}
	if _, err := c.do(ctx, "trainer", http.MethodPost, "/v1/train", map[string]string{"model": model}, &started); err != nil {
		return trainRun{}, err
	}
	deadline := time.Now().Add(timeout)
	for {
		var got struct {
			Run trainRun `json:"run"`
		}
		if _, err := c.do(ctx, "trainer", http.MethodGet, "/v1/train/runs/"+started.Run.ID, nil, &got); err != nil {
			return trainRun{}, err
		}
		switch got.Run.Stage {
		case "succeeded":
			return got.Run, nil
		case "failed":
			return got.Run, fmt.Errorf("run %s failed: %s", got.Run.ID, got.Run.Error)
		}
		if time.Now().After(deadline) {
			return got.Run, fmt.Errorf("run %s still %s after %s", got.Run.ID, got.Run.Stage, timeout)
		}
		select {
		case <-ctx.Done():
			return got.Run, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// waitServing waits until serving answers for model with version.
func (c *apiClient) waitServing(ctx context.Context, model string, version int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var m struct {
			Versions []struct {
				Version int    `json:"version"`
				Alias   string `json:"alias"`
			} `json:"versions"`
			Champion *struct {
				Version int `json:"version"`
			} `json:"champion"`
		}
		_, err := c.do(ctx, "serving", http.MethodGet, "/v1/models/"+model, nil, &m)
		if err == nil {
			if m.Champion != nil && m.Champion.Version == version {
				return nil
			}
			for _, v := range m.Versions {
				if v.Alias == "champion" && v.Version == version {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("serving does not answer for %s version %d after %s (last: %v %+v)", model, version, timeout, err, m)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// aliasMove is one entry of the registry's alias history.
type aliasMove struct {
	Alias    string    `json:"alias"`
	Version  int       `json:"version"`
	Previous int       `json:"previous"`
	Actor    string    `json:"actor"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

func (c *apiClient) aliasHistory(ctx context.Context, model string) ([]aliasMove, error) {
	var out struct {
		Moves []aliasMove `json:"moves"`
	}
	_, err := c.do(ctx, "registry", http.MethodGet, "/v1/models/"+model+"/aliases/history", nil, &out)
	return out.Moves, err
}

// modelVersion is the registry's version with its lineage.
type modelVersion struct {
	Version int `json:"version"`
	Lineage struct {
		RunID          string `json:"run_id"`
		DatasetVersion string `json:"dataset_version"`
		Trigger        string `json:"trigger"`
	} `json:"lineage"`
}

func (c *apiClient) version(ctx context.Context, model string, v int) (modelVersion, error) {
	var out struct {
		Version modelVersion `json:"version"`
	}
	_, err := c.do(ctx, "registry", http.MethodGet, fmt.Sprintf("/v1/models/%s/versions/%d", model, v), nil, &out)
	return out.Version, err
}

// runTags are an MLflow run's tags and start/end times.
func (c *apiClient) runTags(ctx context.Context, runID string) (map[string]string, time.Time, time.Time, error) {
	var out struct {
		Run struct {
			Info struct {
				StartTime int64 `json:"start_time"`
				EndTime   int64 `json:"end_time"`
			} `json:"info"`
			Data struct {
				Tags []struct {
					Key   string `json:"key"`
					Value string `json:"value"`
				} `json:"tags"`
			} `json:"data"`
		} `json:"run"`
	}
	_, err := c.do(ctx, "registry", http.MethodGet, "/api/2.0/mlflow/runs/get?run_id="+url.QueryEscape(runID), nil, &out)
	tags := map[string]string{}
	for _, t := range out.Run.Data.Tags {
		tags[t.Key] = t.Value
	}
	return tags, time.UnixMilli(out.Run.Info.StartTime).UTC(), time.UnixMilli(out.Run.Info.EndTime).UTC(), err
}

// waitServed waits until serving has loaded version of model (under any alias).
func (c *apiClient) waitServed(ctx context.Context, model string, version int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var m struct {
			Versions []struct {
				Version int `json:"version"`
			} `json:"versions"`
		}
		if _, err := c.do(ctx, "serving", http.MethodGet, "/v1/models/"+model, nil, &m); err == nil {
			for _, v := range m.Versions {
				if v.Version == version {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("serving did not load %s version %d within %s", model, version, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}
