package cli

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flywheel-ml/flywheel/platform/config"
)

// service is a Flywheel service the CLI talks to over HTTP. Its base URL is --<name>-url,
// else $FLYWHEEL_<NAME>_URL, else http://$FLYWHEEL_<NAME>_ADDR (the address `flywheel up`
// listens on, so the CLI and `up` agree under one environment), else 127.0.0.1 and its
// default port.
type service struct {
	name string
	port int
}

var (
	ingestService   = service{"ingest", 8081}
	featuresService = service{"features", 8082}
	registryService = service{"registry", 8083}
	servingService  = service{"serving", 8084}
	monitorService  = service{"monitor", 8085}
	trainerService  = service{"trainer", 8086}

	// allServices is every service, in `flywheel up`'s start order.
	allServices = []service{ingestService, featuresService, registryService, servingService, monitorService, trainerService}
)

// tokenEnv holds the bearer token every service command sends when --token is not given.
const tokenEnv = "FLYWHEEL_TOKEN"

func (s service) urlFlag() string    { return s.name + "-url" }
func (s service) urlEnv() string     { return "FLYWHEEL_" + strings.ToUpper(s.name) + "_URL" }
func (s service) addrEnv() string    { return "FLYWHEEL_" + strings.ToUpper(s.name) + "_ADDR" }
func (s service) defaultURL() string { return "http://127.0.0.1:" + strconv.Itoa(s.port) }

// pointAt says how to point the CLI at another address of s.
func (s service) pointAt() string { return "--" + s.urlFlag() + " or " + s.urlEnv() }

// baseURL resolves s's base URL from the flag value, then the environment, then the default;
// source names where it came from, for errors.
func (s service) baseURL(flagValue string, lookup config.LookupFunc) (base, source string, err error) {
	env := func(name string) string {
		if lookup == nil {
			return ""
		}
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	base, source = flagValue, "--"+s.urlFlag()
	if base == "" {
		base, source = env(s.urlEnv()), s.urlEnv()
	}
	if base == "" {
		if addr := env(s.addrEnv()); addr != "" {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return "", s.addrEnv(), fmt.Errorf("%s %q: want host:port", s.addrEnv(), addr)
			}
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1" // listening on every interface: loopback reaches it
			}
			base, source = "http://"+net.JoinHostPort(host, port), s.addrEnv()
		}
	}
	if base == "" {
		base, source = s.defaultURL(), "the default"
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return "", source, fmt.Errorf("%s %q: want an http(s)://host:port base URL", source, base)
	}
	return strings.TrimRight(base, "/"), source, nil
}

// clientOptions are the flags of every command that calls services: --token, --timeout,
// -o, and a --<service>-url for each service the command calls. An empty URL or token falls
// back to the environment when the command runs, so tokens never appear in --help.
type clientOptions struct {
	token   string
	timeout time.Duration
	output  outputFormat
	urls    map[string]*string // service name → its --<name>-url value
}

// addFlags registers the shared flags as persistent flags of cmd (so a command group's
// subcommands share them), with a --<name>-url for each of svcs.
func (o *clientOptions) addFlags(cmd *cobra.Command, svcs ...service) {
	addOutputFlag(cmd, &o.output)
	f := cmd.PersistentFlags()
	f.StringVar(&o.token, "token", "", "bearer token (default $"+tokenEnv+")")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "timeout of each request")
	for _, s := range svcs {
		o.addURLFlag(f, s)
	}
}

// addURLFlag registers --<name>-url for s in flags.
func (o *clientOptions) addURLFlag(flags *pflag.FlagSet, s service) {
	if o.urls == nil {
		o.urls = map[string]*string{}
	}
	v := new(string)
	o.urls[s.name] = v
	flags.StringVar(v, s.urlFlag(), "", s.name+" base URL (default $"+s.urlEnv()+", else "+s.defaultURL()+")")
}

// client builds a client of s from the flags, then the environment, then the defaults.
func (o *clientOptions) client(s service, lookup config.LookupFunc) (*apiClient, error) {
	flagValue := ""
	if v := o.urls[s.name]; v != nil {
		flagValue = *v
	}
	base, _, err := s.baseURL(flagValue, lookup)
	if err != nil {
		return nil, err
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("--timeout must be positive, got %s", o.timeout)
	}
	token := o.token
	if token == "" && lookup != nil {
		v, _ := lookup(tokenEnv)
		token = strings.TrimSpace(v)
	}
	return &apiClient{svc: s, base: base, token: token, http: &http.Client{Timeout: o.timeout}}, nil
}

// apiClient is the one HTTP client of every Flywheel service the CLI calls: JSON (or NDJSON)
// requests with the bearer token, errors decoded from either error shape the services use,
// and a service that does not answer reported by name with how to start it. It is safe for
// concurrent use; every request is bounded by the http.Client timeout and by ctx.
type apiClient struct {
	svc   service
	base  string // no trailing slash
	token string
	http  *http.Client
	extra http.Header
}

// Largest bodies read.
const (
	maxAnswerBody = 64 << 20
	maxErrorBody  = 64 << 10
)

// UnreachableError is a service that did not answer at all: nothing listens at its URL, or
// the connection could not be made.
type UnreachableError struct {
	Service string // "serving"
	URL     string // the base URL tried
	PointAt string // how to point the CLI elsewhere: "--serving-url or FLYWHEEL_SERVING_URL"
	Err     error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("%s at %s is unreachable: start it with `make up` or `flywheel up --detach` (or point the CLI at it with %s): %v",
		e.Service, e.URL, e.PointAt, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// APIError is a non-2xx answer from a service. It is decoded from either error shape the
// services use: MLflow routes answer {"error_code":"...","message":"..."} and the others
// {"error":{"code":"...","message":"..."}}. Code is empty when the body was neither.
type APIError struct {
	Service string
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d", e.Service, e.Status)
	if code := e.Code; code != "" {
		b.WriteString(" " + code)
	} else if text := http.StatusText(e.Status); text != "" {
		b.WriteString(" " + text)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// decodeAPIError reads either error shape from body, falling back to a prefix of the raw body
// (a proxy's HTML page, say).
func decodeAPIError(svc string, status int, body []byte) *APIError {
	e := &APIError{Service: svc, Status: status}
	var doc struct {
		ErrorCode string          `json:"error_code"`
		Message   string          `json:"message"`
		Error     json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &doc) == nil {
		e.Code, e.Message = doc.ErrorCode, doc.Message
		var detail struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		var text string
		switch {
		case len(doc.Error) == 0:
		case json.Unmarshal(doc.Error, &detail) == nil:
			e.Code = cmp.Or(detail.Code, e.Code)
			e.Message = cmp.Or(detail.Message, e.Message)
		case json.Unmarshal(doc.Error, &text) == nil:
			e.Message = cmp.Or(text, e.Message)
		}
	}
	if e.Code == "" && e.Message == "" {
		e.Message = truncate(strings.Join(strings.Fields(string(body)), " "), 200)
	}
	return e
}

// withHeader returns a copy of c that also sends the header.
func (c *apiClient) withHeader(name, value string) *apiClient {
	cc := *c
	cc.extra = c.extra.Clone()
	if cc.extra == nil {
		cc.extra = http.Header{}
	}
	cc.extra.Set(name, value)
	return &cc
}

func (c *apiClient) get(ctx context.Context, path string, query url.Values, out any) error {
	return c.do(ctx, http.MethodGet, path, query, nil, out)
}

func (c *apiClient) post(ctx context.Context, path string, body, out any) error {
	return c.do(ctx, http.MethodPost, path, nil, body, out)
}

// do sends one JSON request (path already escaped; body nil for none) and decodes a 2xx JSON
// answer into out (nil: discarded).
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s: encoding %s %s: %w", c.svc.name, method, path, err)
		}
		payload = b
	}
	return c.doRaw(ctx, method, path, query, "application/json", payload, out)
}

// doRaw sends payload (nil for no body) as contentType and decodes a 2xx JSON answer into out.
func (c *apiClient) doRaw(ctx context.Context, method, path string, query url.Values, contentType string, payload []byte, out any) error {
	resp, err := c.send(ctx, method, path, query, contentType, payload)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBody))
	if err != nil {
		return fmt.Errorf("%s: reading %s %s: %w", c.svc.name, method, path, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s: decoding %s %s: %w", c.svc.name, method, path, err)
	}
	return nil
}

// postNDJSON posts a JSON body and reads an NDJSON answer, one object per line.
func (c *apiClient) postNDJSON(ctx context.Context, path string, body any) ([]map[string]any, error) {
	var out []map[string]any
	err := c.streamNDJSON(ctx, path, body, func(line json.RawMessage) error {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			return fmt.Errorf("%s: %s answered a line that is not a JSON object", c.svc.name, path)
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// streamNDJSON posts a JSON body and hands each line of the NDJSON answer to visit (the line
// is reused afterwards: copy it to keep it).
func (c *apiClient) streamNDJSON(ctx context.Context, path string, body any, visit func(line json.RawMessage) error) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%s: encoding POST %s: %w", c.svc.name, path, err)
	}
	resp, err := c.send(ctx, http.MethodPost, path, nil, "application/json", payload)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		if err := visit(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: reading POST %s: %w", c.svc.name, path, err)
	}
	return nil
}

// send makes the request and returns a 2xx response for the caller to read and close. A
// service that does not answer is an *UnreachableError, any other status an *APIError.
func (c *apiClient) send(ctx context.Context, method, path string, query url.Values, contentType string, payload []byte) (*http.Response, error) {
	resp, err := c.roundTrip(ctx, method, path, query, contentType, payload)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		aerr := decodeAPIError(c.svc.name, resp.StatusCode, raw)
		if resp.StatusCode == http.StatusUnauthorized && c.token == "" {
			return nil, fmt.Errorf("%w (no token: pass --token or set %s)", aerr, tokenEnv)
		}
		return nil, aerr
	}
	return resp, nil
}

// roundTrip makes the request and returns the response whatever its status, for the caller
// to read and close. A service that does not answer is an *UnreachableError.
func (c *apiClient) roundTrip(ctx context.Context, method, path string, query url.Values, contentType string, payload []byte) (*http.Response, error) {
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.svc.name, err)
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range c.extra {
		req.Header[k] = v
	}
	if payload != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, method, path, err)
	}
	return resp, nil
}

// unreachable returns an *UnreachableError when err (from any client of the service) says
// the connection could not be made — nothing listens, the host is unknown — and err otherwise.
func (c *apiClient) unreachable(err error) error {
	if ue, ok := c.asUnreachable(err); ok {
		return ue
	}
	return err
}

func (c *apiClient) asUnreachable(err error) (*UnreachableError, bool) {
	var op *net.OpError
	var dns *net.DNSError
	if !errors.As(err, &dns) && !(errors.As(err, &op) && op.Op == "dial") {
		return nil, false
	}
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		err = ue.Err // the method and URL are said by the caller
	}
	return &UnreachableError{Service: c.svc.name, URL: c.base, PointAt: c.svc.pointAt(), Err: err}, true
}

// transportError explains a request that got no answer: cancelled, unreachable (nothing
// listens, the host is unknown or refuses), or too slow.
func (c *apiClient) transportError(ctx context.Context, method, path string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %s %s: %w", c.svc.name, method, path, ctx.Err())
	}
	if ue, ok := c.asUnreachable(err); ok {
		return ue
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the method and URL are said below
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s at %s did not answer %s %s within %s (--timeout): %w", c.svc.name, c.base, method, path, c.http.Timeout, err)
	}
	return fmt.Errorf("%s at %s: %s %s: %w", c.svc.name, c.base, method, path, err)
}
