package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/cmd/flywheel/up"
	"github.com/flywheel-ml/flywheel/platform/config"
)

// The state of a detached `flywheel up`: its pid and log under the state directory.
const (
	stateDirEnv = "FLYWHEEL_STATE_DIR"
	upPidFile   = "up.pid"
	upLogFile   = "up.log"
)

// stateDir is --state-dir, else $FLYWHEEL_STATE_DIR, else $XDG_STATE_HOME/flywheel, else
// ~/.local/state/flywheel: one place whatever the working directory, so `down` and `status`
// find what `up --detach` started.
func stateDir(flagValue string, lookup config.LookupFunc) (string, error) {
	env := func(k string) string {
		if lookup == nil {
			return ""
		}
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	dir := flagValue
	if dir == "" {
		dir = env(stateDirEnv)
	}
	if dir == "" {
		if x := env("XDG_STATE_HOME"); x != "" {
			dir = filepath.Join(x, "flywheel")
		}
	}
	if dir == "" {
		home := env("HOME")
		if home == "" {
			return "", fmt.Errorf("no state directory: set --state-dir or %s", stateDirEnv)
		}
		dir = filepath.Join(home, ".local", "state", "flywheel")
	}
	return filepath.Abs(dir)
}

// readEnvFile reads KEY=VALUE lines (blank lines, # comments and a leading "export " are
// allowed; values may be quoted), as deploy/local/stack writes them.
func readEnvFile(path string) ([][2]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("--env-file %s line %d: want KEY=VALUE", path, n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out = append(out, [2]string{k, v})
	}
	return out, sc.Err()
}

// withEnvFiles returns a lookup that answers from lookup first, then from the files' values.
func withEnvFiles(lookup config.LookupFunc, files []string) (config.LookupFunc, [][2]string, error) {
	var vars [][2]string
	for _, f := range files {
		kv, err := readEnvFile(f)
		if err != nil {
			return nil, nil, err
		}
		vars = append(vars, kv...)
	}
	if len(vars) == 0 {
		return lookup, nil, nil
	}
	fromFiles := map[string]string{}
	for _, kv := range vars {
		fromFiles[kv[0]] = kv[1]
	}
	return func(k string) (string, bool) {
		if lookup != nil {
			if v, ok := lookup(k); ok {
				return v, true
			}
		}
		v, ok := fromFiles[k]
		return v, ok
	}, vars, nil
}

func upCommand(lookup config.LookupFunc) *cobra.Command {
	var detach bool
	var dir string
	var envFiles []string
	var wait time.Duration
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run every service in one process (configured by FLYWHEEL_* variables); -d runs it in the background",
		Long: `Runs the six services (ingest, features, registry, serving, monitor, trainer) in one process
against the infrastructure the FLYWHEEL_* variables name (defaults: the local stack on
127.0.0.1 — start it with deploy/local/stack up or make stack-up). In the foreground it runs
until Ctrl-C or SIGTERM, then shuts every service down gracefully.

With --detach it starts itself in the background in a session of its own, records its pid in
<state dir>/up.pid, appends its logs to <state dir>/up.log, waits until every service answers
/healthz (at most --wait) and returns; flywheel status shows their readiness and flywheel down
stops them. The state dir is --state-dir, else $` + stateDirEnv + `, else
$XDG_STATE_HOME/flywheel, else ~/.local/state/flywheel.

--env-file reads KEY=VALUE lines (deploy/local/stack's env file, for one) for variables the
environment does not set.`,
		Example: `  flywheel up                                        # foreground, Ctrl-C stops it
  flywheel up --detach --env-file .flywheel/stack/env
  flywheel status && flywheel down`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, vars, err := withEnvFiles(lookup, envFiles)
			if err != nil {
				return err
			}
			if !detach {
				services, err := up.Services(env, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				if dir != "" {
					// A detached child: forget the pid file when stopping of its own accord.
					defer removeOwnPidFile(dir)
				}
				return up.Run(cmd.Context(), services)
			}
			if _, err := up.Services(env, io.Discard); err != nil {
				return err // a configuration error is reported here, not in the log
			}
			sd, err := stateDir(dir, lookup)
			if err != nil {
				return err
			}
			started, err := startDetached(cmd.Context(), sd, envFiles, vars, env, wait)
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), output, started, func(w io.Writer) error {
				fmt.Fprintf(w, "flywheel up is running in the background: pid %d, log %s\n", started.PID, started.Log)
				t := newTable(w, "SERVICE", "URL")
				for _, s := range started.Services {
					t.row(s.Name, s.URL)
				}
				if err := t.flush(); err != nil {
					return err
				}
				_, err := fmt.Fprintln(w, "flywheel status shows their readiness; flywheel down stops them")
				return err
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&detach, "detach", "d", false, "run in the background; flywheel down stops it")
	f.StringVar(&dir, "state-dir", "", "where the pid and log files of --detach go (default $"+stateDirEnv+", else ~/.local/state/flywheel)")
	f.StringArrayVar(&envFiles, "env-file", nil, "read FLYWHEEL_* variables from this KEY=VALUE file (repeatable)")
	f.DurationVar(&wait, "wait", 90*time.Second, "--detach: how long to wait for every service to answer /healthz")
	addOutputFlag(cmd, &output)
	return cmd
}

// detached is what `up --detach` started.
type detached struct {
	PID      int    `json:"pid"`
	Log      string `json:"log"`
	StateDir string `json:"state_dir"`
	Services []struct {
		Name string `json:"name"`
		URL  string `json:"url"`
	} `json:"services"`
}

// startDetached starts this binary's `up` in the background and waits for every service's
// /healthz.
func startDetached(ctx context.Context, dir string, envFiles []string, vars [][2]string, env config.LookupFunc, wait time.Duration) (*detached, error) {
	if pid, ok := runningUp(dir); ok {
		return nil, fmt.Errorf("flywheel up is already running (pid %d, log %s): flywheel down stops it", pid, filepath.Join(dir, upLogFile))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this binary to run in the background: %w", err)
	}
	logPath := filepath.Join(dir, upLogFile)
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "--- flywheel up --detach at %s\n", time.Now().UTC().Format(time.RFC3339))
	args := []string{"up", "--state-dir", dir}
	for _, f := range envFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		args = append(args, "--env-file", abs)
	}
	child := exec.Command(exe, args...)
	child.Env = os.Environ()
	for _, kv := range vars {
		if _, set := os.LookupEnv(kv[0]); !set {
			child.Env = append(child.Env, kv[0]+"="+kv[1])
		}
	}
	child.Stdin, child.Stdout, child.Stderr = nil, logFile, logFile
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // its own session: Ctrl-C here does not reach it
	if err := child.Start(); err != nil {
		return nil, fmt.Errorf("starting %s up: %w", exe, err)
	}
	pid := child.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }() // reaps it should it stop while this process lives
	if err := os.WriteFile(filepath.Join(dir, upPidFile), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		_ = child.Process.Kill()
		return nil, err
	}
	out := &detached{PID: pid, Log: logPath, StateDir: dir}
	probe := &clientOptions{timeout: 2 * time.Second}
	deadline := time.Now().Add(wait)
	for _, s := range allServices {
		c, err := probe.client(s, env)
		if err != nil {
			return nil, err
		}
		out.Services = append(out.Services, struct {
			Name string `json:"name"`
			URL  string `json:"url"`
		}{s.name, c.base})
		for {
			resp, err := c.roundTrip(ctx, "GET", "/healthz", nil, "", nil)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			select {
			case werr := <-exited:
				_ = os.Remove(filepath.Join(dir, upPidFile))
				return nil, fmt.Errorf("flywheel up exited (%v) before %s answered; the end of its log:\n%s", werr, s.name, logTail(logPath, 30))
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%s did not answer /healthz at %s within %s; flywheel up (pid %d) keeps running — see %s, or stop it with flywheel down",
					s.name, c.base, wait, pid, logPath)
			}
		}
	}
	return out, nil
}

// logTail is the last n lines of the file.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// runningUp reads the state dir's pid file and says whether that process is a live
// `flywheel up` of this state dir.
func runningUp(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, upPidFile))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, isUpProcess(pid, dir)
}

// isUpProcess says whether pid is alive (not a zombie) and, where /proc tells, runs `up`
// with this state dir — so a recycled pid is never signalled.
func isUpProcess(pid int, dir string) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
			return false
		}
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) || !procMounted()
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	for i := 1; i+1 < len(args); i++ {
		if args[i] == "--state-dir" && args[i+1] == dir {
			return true
		}
	}
	return false
}

func procMounted() bool {
	_, err := os.Stat("/proc/self/cmdline")
	return err == nil
}

// removeOwnPidFile removes the state dir's pid file if it names this process.
func removeOwnPidFile(dir string) {
	path := filepath.Join(dir, upPidFile)
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		_ = os.Remove(path)
	}
}

func downCommand(lookup config.LookupFunc) *cobra.Command {
	var dir string
	var timeout time.Duration
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the services `flywheel up --detach` started: SIGTERM, wait, then SIGKILL",
		Long: `Stops the background flywheel up recorded in the state dir: SIGTERM (every service drains
in-flight work and commits), then waits up to --timeout for it to exit, then SIGKILL. Only
the recorded process is signalled, and only if it still is that flywheel up. Does nothing,
successfully, when nothing runs. (Services started by make up are stopped by make down.)`,
		Example: `  flywheel down
  flywheel down --timeout 30s -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sd, err := stateDir(dir, lookup)
			if err != nil {
				return err
			}
			res, err := stopUp(cmd.Context(), sd, timeout)
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), output, res, func(w io.Writer) error {
				var err error
				switch {
				case res.PID == 0:
					_, err = fmt.Fprintf(w, "flywheel up is not running (no %s)\n", filepath.Join(sd, upPidFile))
				case !res.WasRunning:
					_, err = fmt.Fprintf(w, "flywheel up (pid %d) was not running; removed its stale pid file\n", res.PID)
				case res.Killed:
					_, err = fmt.Fprintf(w, "flywheel up (pid %d) did not stop within %s of SIGTERM: killed\n", res.PID, timeout)
				default:
					_, err = fmt.Fprintf(w, "flywheel up (pid %d) stopped in %.1fs\n", res.PID, res.Seconds)
				}
				return err
			})
		},
	}
	cmd.Flags().StringVar(&dir, "state-dir", "", "the state dir `up --detach` used (default $"+stateDirEnv+", else ~/.local/state/flywheel)")
	cmd.Flags().DurationVar(&timeout, "timeout", 20*time.Second, "how long to wait after SIGTERM before SIGKILL")
	addOutputFlag(cmd, &output)
	return cmd
}

// stopped is what `down` did.
type stopped struct {
	PID        int     `json:"pid"`         // 0: no pid file
	WasRunning bool    `json:"was_running"` // false: the pid file was stale
	Killed     bool    `json:"killed"`      // SIGKILL was needed
	Seconds    float64 `json:"seconds"`
}

func stopUp(ctx context.Context, dir string, timeout time.Duration) (*stopped, error) {
	pidPath := filepath.Join(dir, upPidFile)
	pid, running := runningUp(dir)
	res := &stopped{PID: pid, WasRunning: running}
	if !running {
		if err := os.Remove(pidPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return res, nil
	}
	began := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return nil, fmt.Errorf("SIGTERM to pid %d: %w", pid, err)
	}
	gone := func(limit time.Duration) bool {
		deadline := time.Now().Add(limit)
		for time.Now().Before(deadline) {
			if !isUpProcess(pid, dir) {
				return true
			}
			select {
			case <-ctx.Done():
				return false
			case <-time.After(100 * time.Millisecond):
			}
		}
		return !isUpProcess(pid, dir)
	}
	if !gone(timeout) {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("waiting for pid %d to stop: %w", pid, err)
		}
		res.Killed = true
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return nil, fmt.Errorf("SIGKILL to pid %d: %w", pid, err)
		}
		if !gone(5 * time.Second) {
			return nil, fmt.Errorf("pid %d still runs after SIGKILL", pid)
		}
	}
	res.Seconds = time.Since(began).Seconds()
	if err := os.Remove(pidPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return res, nil
}
