package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Server is a server process of the test's own — the stack's dev broker, redis-server or
// nats-server on a free port with its own data dir — that the test may stop and start
// again to inject faults without disturbing the shared stack other tests use. It is killed
// when the test ends.
type Server struct {
	t    testing.TB
	name string
	addr string
	argv []string
	cmd  *exec.Cmd
	log  string
}

// Addr is the server's host:port; it stays the same across restarts.
func (s *Server) Addr() string { return s.addr }

// Start runs the server and waits until its port accepts connections.
func (s *Server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatalf("%s is already running", s.name)
	}
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatalf("open %s log: %v", s.name, err)
	}
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		s.t.Fatalf("start %s: %v", s.name, err)
	}
	go func() { _ = cmd.Wait(); _ = logf.Close() }()
	s.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", s.addr, 200*time.Millisecond); err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(s.log)
			s.t.Fatalf("%s did not answer on %s within 20 s; its log:\n%s", s.name, s.addr, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop asks the server to shut down (SIGTERM) and waits until its port is closed.
func (s *Server) Stop() { s.t.Helper(); s.signal(syscall.SIGTERM) }

// Kill ends the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() { s.t.Helper(); s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := s.cmd.Process.Signal(syscall.Signal(0)); err != nil {
			break // gone
		}
		if time.Now().After(deadline) {
			_ = s.cmd.Process.Kill()
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.cmd = nil
}

func private(t testing.TB, name string, argv func(port int, dir string) []string) *Server {
	t.Helper()
	_, portStr, _ := net.SplitHostPort(FreeAddr(t))
	port, _ := strconv.Atoi(portStr)
	dir := t.TempDir()
	s := &Server{t: t, name: name, addr: net.JoinHostPort("127.0.0.1", portStr), argv: argv(port, dir),
		log: filepath.Join(dir, name+".log")}
	t.Cleanup(func() {
		if s.cmd != nil {
			_ = s.cmd.Process.Kill()
			s.cmd = nil
		}
	})
	s.Start()
	return s
}

func stackBinary(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(env(t, "FLYWHEEL_STACK_BIN_DIR"), name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s not found (%v): %s", path, err, howToStart)
	}
	return path
}

// PrivateKafka starts a dev broker (the stack's devkafka) of the test's own, persisting to
// its own data dir and syncing every write, so a restart keeps what it acknowledged.
func PrivateKafka(t testing.TB) *Server {
	t.Helper()
	bin := stackBinary(t, "devkafka")
	return private(t, "devkafka", func(port int, dir string) []string {
		return []string{bin, "-port", strconv.Itoa(port), "-data-dir", filepath.Join(dir, "data"), "-sync-writes=true", "-partitions", "3"}
	})
}

// PrivateRedis starts a redis-server of the test's own with AOF persistence (fsync every
// second), as the local stack and production run it.
func PrivateRedis(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found: %s", howToStart)
	}
	return private(t, "redis", func(port int, dir string) []string {
		return []string{bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
			"--appendfsync", "everysec", "--dir", dir}
	})
}

// PrivateNATS starts a nats-server with JetStream of the test's own (the stack's build).
func PrivateNATS(t testing.TB) *Server {
	t.Helper()
	bin := stackBinary(t, "nats-server")
	return private(t, "nats", func(port int, dir string) []string {
		return []string{bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", filepath.Join(dir, "js")}
	})
}
