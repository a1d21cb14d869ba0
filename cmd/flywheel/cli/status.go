package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/natsx"
	"github.com/flywheel-ml/flywheel/platform/redisx"
)

// serviceStatus is one service's /readyz answer.
type serviceStatus struct {
	Name   string            `json:"name"`
	URL    string            `json:"url"`
	State  string            `json:"state"`            // ready, not ready, unreachable
	Reason string            `json:"reason,omitempty"` // the failing checks, or why it did not answer
	Checks map[string]string `json:"checks,omitempty"` // each dependency check's result, as /readyz says
}

// serverStatus is one infrastructure server's reachability.
type serverStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	State   string `json:"state"`             // reachable, unreachable
	Version string `json:"version,omitempty"` // what the server says it runs, where it says
	Error   string `json:"error,omitempty"`
}

// statusReport is what `flywheel status` prints.
type statusReport struct {
	Ready          bool            `json:"ready"` // every service ready and every server reachable
	Services       []serviceStatus `json:"services"`
	Infrastructure []serverStatus  `json:"infrastructure"`
	Process        *upProcess      `json:"process,omitempty"` // the detached `flywheel up`, when one was started
}

type upProcess struct {
	PID     int    `json:"pid"`
	Running bool   `json:"running"`
	Log     string `json:"log"`
}

func statusCommand(lookup config.LookupFunc) *cobra.Command {
	opts := &clientOptions{}
	var dir string
	var envFiles []string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Each service's readiness and why not, and whether Kafka, NATS, Redis and ClickHouse answer",
		Long: `Asks every service for /readyz (200 only when each of its dependencies answers; otherwise the
failing checks say why) and probes each infrastructure server with its own protocol: Kafka
ApiVersions, NATS with JetStream, Redis PING, ClickHouse ping — at the addresses the FLYWHEEL_*
variables name, the ones the services use. Also shows the background flywheel up, if one was
started. Exits 1 unless every service is ready and every server reachable. --env-file reads
variables the environment does not set, as flywheel up does.`,
		Example: `  flywheel status
  flywheel status --env-file .flywheel/stack/env
  flywheel status -o json | jq -r '.services[] | select(.state != "ready") | .name + ": " + .reason'
  until flywheel status >/dev/null; do sleep 1; done   # wait for readiness`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lookup, _, err := withEnvFiles(lookup, envFiles)
			if err != nil {
				return err
			}
			rep, err := gatherStatus(cmd.Context(), opts, lookup)
			if err != nil {
				return err
			}
			if sd, err := stateDir(dir, lookup); err == nil {
				if pid, running := runningUp(sd); pid > 0 {
					rep.Process = &upProcess{PID: pid, Running: running, Log: filepath.Join(sd, upLogFile)}
				}
			}
			if err := emit(cmd.OutOrStdout(), opts.output, rep, func(w io.Writer) error { return printStatus(w, rep) }); err != nil {
				return err
			}
			if !rep.Ready {
				var bad []string
				for _, s := range rep.Services {
					if s.State != "ready" {
						bad = append(bad, s.Name+" ("+s.State+")")
					}
				}
				for _, s := range rep.Infrastructure {
					if s.State != "reachable" {
						bad = append(bad, s.Name+" (unreachable)")
					}
				}
				return fmt.Errorf("not ready: %s", strings.Join(bad, ", "))
			}
			return nil
		},
	}
	opts.addFlags(cmd, allServices...)
	timeout := cmd.PersistentFlags().Lookup("timeout") // status waits less than other commands
	_ = timeout.Value.Set("3s")
	timeout.DefValue = "3s"
	cmd.Flags().StringArrayVar(&envFiles, "env-file", nil, "read FLYWHEEL_* variables from this KEY=VALUE file (repeatable)")
	cmd.Flags().StringVar(&dir, "state-dir", "", "the state dir of `up --detach` (default $"+stateDirEnv+", else ~/.local/state/flywheel)")
	return cmd
}

// gatherStatus asks every service and server at once.
func gatherStatus(ctx context.Context, opts *clientOptions, lookup config.LookupFunc) (*statusReport, error) {
	var infra struct {
		Kafka      kafkax.Config
		NATS       natsx.Config
		Redis      redisx.Config
		ClickHouse chx.Config
	}
	if err := config.Load(&infra, nil, lookup, io.Discard); err != nil {
		return nil, err
	}
	clients := make([]*apiClient, len(allServices))
	for i, s := range allServices {
		c, err := opts.client(s, lookup)
		if err != nil {
			return nil, err
		}
		clients[i] = c
	}
	rep := &statusReport{Services: make([]serviceStatus, len(allServices))}
	probes := []struct {
		name, addr string
		probe      func(ctx context.Context) (string, error)
	}{
		{"kafka", strings.Join(infra.Kafka.Brokers, ","), func(ctx context.Context) (string, error) { return "", probeKafka(ctx, infra.Kafka) }},
		{"nats", infra.NATS.URL, func(ctx context.Context) (string, error) { return probeNATS(ctx, infra.NATS) }},
		{"redis", infra.Redis.Addr, func(ctx context.Context) (string, error) { return probeRedis(ctx, infra.Redis) }},
		{"clickhouse", infra.ClickHouse.Addr, func(ctx context.Context) (string, error) { return probeClickHouse(ctx, infra.ClickHouse) }},
	}
	rep.Infrastructure = make([]serverStatus, len(probes))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() { rep.Services[i] = readiness(ctx, c) })
	}
	for i, p := range probes {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, opts.timeout)
			defer cancel()
			st := serverStatus{Name: p.name, Address: p.addr, State: "reachable"}
			version, err := p.probe(pctx)
			if err != nil {
				st.State, st.Error = "unreachable", err.Error()
			}
			st.Version = version
			rep.Infrastructure[i] = st
		})
	}
	wg.Wait()
	rep.Ready = true
	for _, s := range rep.Services {
		rep.Ready = rep.Ready && s.State == "ready"
	}
	for _, s := range rep.Infrastructure {
		rep.Ready = rep.Ready && s.State == "reachable"
	}
	return rep, nil
}

// readiness asks one service's /readyz.
func readiness(ctx context.Context, c *apiClient) serviceStatus {
	st := serviceStatus{Name: c.svc.name, URL: c.base}
	resp, err := c.roundTrip(ctx, "GET", "/readyz", nil, "", nil)
	if err != nil {
		st.State = "unreachable"
		var ue *UnreachableError
		if errors.As(err, &ue) {
			st.Reason = ue.Err.Error()
		} else {
			st.Reason = err.Error()
		}
		return st
	}
	defer resp.Body.Close()
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if json.Unmarshal(raw, &body) != nil {
		st.State, st.Reason = "not ready", fmt.Sprintf("/readyz answered %d: %s", resp.StatusCode, truncate(strings.TrimSpace(string(raw)), 200))
		return st
	}
	st.Checks = body.Checks
	if resp.StatusCode == 200 {
		st.State = "ready"
		return st
	}
	st.State = "not ready"
	var failing []string
	for name, result := range body.Checks {
		if result != "ok" {
			failing = append(failing, name+": "+result)
		}
	}
	sort.Strings(failing)
	st.Reason = strings.Join(failing, "; ")
	if st.Reason == "" {
		st.Reason = "/readyz answered " + strconv.Itoa(resp.StatusCode)
	}
	return st
}

func probeKafka(ctx context.Context, cfg kafkax.Config) error {
	admin := kafkax.NewAdmin(cfg)
	defer admin.Close()
	return admin.Check(ctx)
}

func probeNATS(ctx context.Context, cfg natsx.Config) (string, error) {
	opts := []nats.Option{nats.Name("flywheel-status"), nats.Timeout(2 * time.Second), nats.NoReconnect()}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return "", err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nc.ConnectedServerVersion(), err
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		return nc.ConnectedServerVersion(), fmt.Errorf("connected, but JetStream does not answer (is it enabled? nats-server -js): %w", err)
	}
	return "nats-server " + nc.ConnectedServerVersion() + ", JetStream", nil
}

// probeRedis sends PING (after AUTH when a password is set) over RESP and expects PONG.
// (go-redis would do, but logs every failed dial to stderr on its own.)
func probeRedis(ctx context.Context, cfg redisx.Config) (string, error) {
	d := &net.Dialer{Timeout: 2 * time.Second}
	var conn net.Conn
	var err error
	if cfg.TLS {
		conn, err = (&tls.Dialer{NetDialer: d, Config: &tls.Config{MinVersion: tls.VersionTLS12}}).DialContext(ctx, "tcp", cfg.Addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", cfg.Addr)
	}
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	r := bufio.NewReader(conn)
	command := func(args ...string) (string, error) {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := io.WriteString(conn, b.String()); err != nil {
			return "", err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "-") {
			return "", errors.New("redis: " + line[1:])
		}
		return line, nil
	}
	if cfg.Password != "" {
		if _, err := command("AUTH", cfg.Password); err != nil {
			return "", err
		}
	}
	answer, err := command("PING")
	if err != nil {
		return "", err
	}
	if answer != "+PONG" {
		return "", fmt.Errorf("PING answered %q: is this Redis?", truncate(answer, 40))
	}
	return "", nil
}

func probeClickHouse(ctx context.Context, cfg chx.Config) (string, error) {
	opts := &clickhouse.Options{Addr: []string{cfg.Addr}, DialTimeout: 2 * time.Second, MaxOpenConns: 1,
		// the default database always exists: reachability, not whether Flywheel's was created
		Auth: clickhouse.Auth{Database: "default", Username: cfg.User, Password: cfg.Password}}
	if cfg.TLS {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.Ping(ctx); err != nil {
		return "", err
	}
	v, err := conn.ServerVersion()
	if err != nil {
		return "", nil
	}
	return fmt.Sprintf("%s %d.%d.%d", v.Name, v.Version.Major, v.Version.Minor, v.Version.Patch), nil
}

func printStatus(w io.Writer, rep *statusReport) error {
	t := newTable(w, "SERVICE", "URL", "STATE", "REASON")
	for _, s := range rep.Services {
		t.row(s.Name, s.URL, s.State, s.Reason)
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, s := range rep.Services {
		if s.State == "unreachable" {
			fmt.Fprintln(w, "(start the services with `make up` or `flywheel up --detach`; point the CLI elsewhere with --<service>-url or FLYWHEEL_<SERVICE>_URL)")
			break
		}
	}
	fmt.Fprintln(w)
	t = newTable(w, "SERVER", "ADDRESS", "STATE", "DETAIL")
	down := false
	for _, s := range rep.Infrastructure {
		t.row(s.Name, s.Address, s.State, s.Version+s.Error)
		down = down || s.State != "reachable"
	}
	if err := t.flush(); err != nil {
		return err
	}
	if down {
		fmt.Fprintln(w, "(start the local stack with `make stack-up` or deploy/local/stack up; its addresses are FLYWHEEL_KAFKA_BROKERS, FLYWHEEL_NATS_URL, FLYWHEEL_REDIS_ADDR, FLYWHEEL_CLICKHOUSE_ADDR)")
	}
	if p := rep.Process; p != nil {
		state := "running"
		if !p.Running {
			state = "not running (stale pid file)"
		}
		if _, err := fmt.Fprintf(w, "\nflywheel up --detach: %s, pid %d, log %s\n", state, p.PID, p.Log); err != nil {
			return err
		}
	}
	return nil
}
