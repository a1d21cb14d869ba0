package cli_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the process `flywheel up --detach` starts (it runs itself): with
// FLYWHEEL_CLI_TEST_FAKE_UP=1 it serves /healthz and /readyz on every FLYWHEEL_<SERVICE>_ADDR
// until SIGTERM — serving's /readyz says it waits for a champion — and with
// FLYWHEEL_CLI_TEST_IGNORE_TERM=1 it ignores SIGTERM.
func TestMain(m *testing.M) {
	if os.Getenv("FLYWHEEL_CLI_TEST_FAKE_UP") == "1" {
		fakeUp()
		return
	}
	os.Exit(m.Run())
}

var serviceNames = []string{"ingest", "features", "registry", "serving", "monitor", "trainer"}

func fakeUp() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	for _, name := range serviceNames {
		l, err := net.Listen("tcp", os.Getenv("FLYWHEEL_"+strings.ToUpper(name)+"_ADDR"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake up:", err)
			os.Exit(2)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"status":"ok"}`) })
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			if name == "serving" {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprint(w, `{"status":"not ready","checks":{"models":"no champion for fraud yet","redis":"ok"}}`)
				return
			}
			fmt.Fprint(w, `{"status":"ready","checks":{"kafka":"ok"}}`)
		})
		go func() { _ = http.Serve(l, mux) }()
	}
	fmt.Fprintln(os.Stderr, "fake up: serving")
	for range signals {
		if os.Getenv("FLYWHEEL_CLI_TEST_IGNORE_TERM") != "1" {
			return
		}
	}
}

// upEnv writes an env file that makes the detached child a fake `up` on free ports, and
// returns it with the CLI's environment (state dir, the services' addresses, unreachable
// infrastructure).
func upEnv(t *testing.T, ignoreTerm bool) (file string, env map[string]string) {
	t.Helper()
	dir := t.TempDir()
	env = map[string]string{"FLYWHEEL_STATE_DIR": filepath.Join(dir, "state"), "HOME": dir,
		"FLYWHEEL_KAFKA_BROKERS": strings.TrimPrefix(closedURL(t), "http://"), "FLYWHEEL_NATS_URL": "nats://" + strings.TrimPrefix(closedURL(t), "http://"),
		"FLYWHEEL_REDIS_ADDR": strings.TrimPrefix(closedURL(t), "http://"), "FLYWHEEL_CLICKHOUSE_ADDR": strings.TrimPrefix(closedURL(t), "http://")}
	lines := []string{"# the fake", "FLYWHEEL_CLI_TEST_FAKE_UP=1", "export FLYWHEEL_CLI_TEST_IGNORE_TERM=" + map[bool]string{true: "1", false: "0"}[ignoreTerm]}
	for _, name := range serviceNames {
		addr := strings.TrimPrefix(closedURL(t), "http://")
		key := "FLYWHEEL_" + strings.ToUpper(name) + "_ADDR"
		lines = append(lines, key+`="`+addr+`"`)
		env[key] = addr
	}
	file = filepath.Join(dir, "env")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, env
}

func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && stat[i+2] != 'Z'
}

// up --detach starts itself in the background with a pid and a log file, refuses a second
// start, status reports each service's readiness and reason and the unreachable servers (and
// fails), and down stops it with SIGTERM and forgets it.
func TestUpDetachStatusDown(t *testing.T) {
	file, env := upEnv(t, false)
	out, err := runCLI(t, env, "up", "--detach", "--env-file", file, "--wait", "20s", "-o", "json")
	if err != nil {
		t.Fatalf("up --detach: %v\n%s", err, out)
	}
	var started struct {
		PID      int    `json:"pid"`
		Log      string `json:"log"`
		Services []struct{ Name, URL string }
	}
	if err := json.Unmarshal([]byte(out), &started); err != nil || started.PID == 0 || len(started.Services) != 6 {
		t.Fatalf("want the pid, log and six services, got %v:\n%s", err, out)
	}
	t.Cleanup(func() { _ = syscall.Kill(started.PID, syscall.SIGKILL) })
	pidFile := filepath.Join(env["FLYWHEEL_STATE_DIR"], "up.pid")
	if b, err := os.ReadFile(pidFile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(started.PID) {
		t.Fatalf("pid file: %q %v", b, err)
	}
	if log, _ := os.ReadFile(started.Log); !strings.Contains(string(log), "fake up: serving") {
		t.Errorf("the log %s lacks the child's output: %s", started.Log, log)
	}
	if _, err := runCLI(t, env, "up", "--detach", "--env-file", file); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("a second up --detach must refuse, got %v", err)
	}

	out, err = runCLI(t, env, "status", "-o", "json")
	if err == nil || !strings.Contains(err.Error(), "serving (not ready)") || !strings.Contains(err.Error(), "kafka (unreachable)") {
		t.Fatalf("status must fail naming serving and kafka, got %v", err)
	}
	var st struct {
		Ready    bool
		Services []struct{ Name, State, Reason string }
		Infra    []struct{ Name, State, Error string } `json:"infrastructure"`
		Process  *struct {
			PID     int
			Running bool
		}
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Ready || len(st.Services) != 6 || len(st.Infra) != 4 {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	for _, s := range st.Services {
		want := "ready"
		if s.Name == "serving" {
			want = "not ready"
			if s.Reason != "models: no champion for fraud yet" {
				t.Errorf("serving's reason: %q", s.Reason)
			}
		}
		if s.State != want {
			t.Errorf("%s: %s, want %s", s.Name, s.State, want)
		}
	}
	for _, s := range st.Infra {
		if s.State != "unreachable" || s.Error == "" {
			t.Errorf("%s: %s %q, want unreachable with the error", s.Name, s.State, s.Error)
		}
	}
	if st.Process == nil || st.Process.PID != started.PID || !st.Process.Running {
		t.Errorf("status must show the detached process: %+v", st.Process)
	}
	out, _ = runCLI(t, env, "status")
	for _, want := range []string{"serving   http://", "not ready  models: no champion for fraud yet", "kafka", "unreachable", "flywheel up --detach: running, pid"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}

	out, err = runCLI(t, env, "down")
	if err != nil || !strings.Contains(out, fmt.Sprintf("flywheel up (pid %d) stopped in", started.PID)) {
		t.Fatalf("down: %v\n%s", err, out)
	}
	if alive(started.PID) {
		t.Error("the process still runs after down")
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("the pid file is still there: %v", err)
	}
	out, err = runCLI(t, env, "down")
	if err != nil || !strings.Contains(out, "not running") {
		t.Fatalf("a second down must say nothing runs: %v\n%s", err, out)
	}
}

// A process that ignores SIGTERM is killed after --timeout.
func TestDownKillsAfterTimeout(t *testing.T) {
	file, env := upEnv(t, true)
	out, err := runCLI(t, env, "up", "-d", "--env-file", file, "--wait", "20s", "-o", "json")
	if err != nil {
		t.Fatalf("up -d: %v\n%s", err, out)
	}
	var started struct{ PID int }
	_ = json.Unmarshal([]byte(out), &started)
	t.Cleanup(func() { _ = syscall.Kill(started.PID, syscall.SIGKILL) })
	began := time.Now()
	out, err = runCLI(t, env, "down", "--timeout", "500ms", "-o", "json")
	var res struct {
		PID    int  `json:"pid"`
		Killed bool `json:"killed"`
	}
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || !res.Killed || res.PID != started.PID {
		t.Fatalf("down must kill pid %d: %v\n%s", started.PID, err, out)
	}
	if time.Since(began) < 500*time.Millisecond || alive(started.PID) {
		t.Errorf("killed too early (%v) or not at all", time.Since(began))
	}
}

// down never signals a process that is not the recorded `flywheel up` (a recycled pid): it
// removes the stale pid file instead.
func TestDownLeavesOtherProcessesAlone(t *testing.T) {
	_, env := upEnv(t, false)
	dir := env["FLYWHEEL_STATE_DIR"]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// This test process is alive but is no `flywheel up` of the state dir.
	if err := os.WriteFile(filepath.Join(dir, "up.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, env, "down")
	if err != nil || !strings.Contains(out, "was not running; removed its stale pid file") {
		t.Fatalf("%v\n%s", err, out)
	}
}

// A child that exits before answering makes up --detach fail with the end of its log.
func TestUpDetachReportsAChildThatExits(t *testing.T) {
	file, env := upEnv(t, false)
	// Two services on one address: the fake exits at once.
	b, _ := os.ReadFile(file)
	b = append(b, []byte("FLYWHEEL_FEATURES_ADDR="+env["FLYWHEEL_INGEST_ADDR"]+"\n")...)
	_ = os.WriteFile(file, b, 0o644)
	delete(env, "FLYWHEEL_FEATURES_ADDR")
	delete(env, "FLYWHEEL_INGEST_ADDR")
	_, err := runCLI(t, env, "up", "--detach", "--env-file", file, "--wait", "20s")
	if err == nil || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("want the exit with the log's end, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(env["FLYWHEEL_STATE_DIR"], "up.pid")); !os.IsNotExist(err) {
		t.Errorf("the pid file must go: %v", err)
	}
}
