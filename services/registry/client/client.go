// Package client is the registry's Go client for the other services (the trainer registers
// runs, datasets and versions and moves aliases; serving and the monitor read versions,
// artifacts and aliases). It speaks the registry's public HTTP API — MLflow REST 2.0, the
// mlflow-artifacts proxy and the /v1 extensions — and imports none of its internals.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Error is a registry answer other than success: the HTTP status and the registry's code
// (MLflow's error_code, or the /v1 error code) and message.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("registry: %d %s: %s", e.Status, e.Code, e.Message)
}

// IsNotFound reports whether err is the registry saying the thing does not exist.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Status == http.StatusNotFound)
}

// IsAlreadyExists reports whether err is the registry refusing a name that is taken.
func IsAlreadyExists(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == "RESOURCE_ALREADY_EXISTS"
}

// Client calls one registry. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	actor string
	http  *http.Client
}

// New returns a client of the registry at baseURL ("http://127.0.0.1:8083"); token may be
// empty when auth is off; actor names the caller in the alias audit trail.
func New(baseURL, token, actor string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, actor: actor, http: hc}
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string, out any, header http.Header) error {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("registry %s %s: %w", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.actor != "" {
		req.Header.Set("X-Flywheel-Actor", c.actor)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("registry %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return decodeError(resp.StatusCode, raw)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if w, ok := out.(io.Writer); ok {
		_, err = io.Copy(w, resp.Body)
	} else {
		err = json.NewDecoder(resp.Body).Decode(out)
	}
	if err != nil {
		return fmt.Errorf("registry %s %s: read answer: %w", method, path, err)
	}
	return nil
}

func decodeError(status int, raw []byte) *Error {
	var mlflow struct {
		Code    string `json:"error_code"`
		Message string `json:"message"`
	}
	var v1 struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	switch {
	case json.Unmarshal(raw, &mlflow) == nil && mlflow.Code != "":
		return &Error{Status: status, Code: mlflow.Code, Message: mlflow.Message}
	case json.Unmarshal(raw, &v1) == nil && v1.Error.Code != "":
		return &Error{Status: status, Code: v1.Error.Code, Message: v1.Error.Message}
	}
	return &Error{Status: status, Code: http.StatusText(status), Message: strings.TrimSpace(string(raw))}
}

func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("registry POST %s: %w", path, err)
	}
	return c.do(ctx, http.MethodPost, path, nil, bytes.NewReader(body), "application/json", out, nil)
}

func (c *Client) getJSON(ctx context.Context, path string, query url.Values, out any) error {
	return c.do(ctx, http.MethodGet, path, query, nil, "", out, nil)
}

const mlflow = "/api/2.0/mlflow/"
