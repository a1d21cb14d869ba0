// Command healthcheck probes a Flywheel service from inside its container: the images are
// FROM scratch, with no shell, curl or wget for a compose HEALTHCHECK to run.
//
//	healthcheck [-timeout 2s] http://127.0.0.1:8084/readyz
//
// It exits 0 when the URL answers 2xx, and 1 otherwise, printing the status line and the
// start of the body (the /readyz body names what start-up waits for). It speaks plain
// HTTP/1.0 over net rather than net/http, which keeps the binary small (about 2.4 MB against 8 MB).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

func main() {
	timeout := flag.Duration("timeout", 2*time.Second, "connect and read deadline")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: healthcheck [-timeout 2s] http://HOST:PORT/PATH")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	status, body, err := probe(flag.Arg(0), *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
	if status < 200 || status > 299 {
		fmt.Fprintf(os.Stderr, "healthcheck: %s answered %d: %s\n", flag.Arg(0), status, body)
		os.Exit(1)
	}
}

// probe sends one GET and returns the status code and up to 512 bytes of the body.
func probe(raw string, timeout time.Duration) (int, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return 0, "", fmt.Errorf("bad URL %q: %w", raw, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return 0, "", fmt.Errorf("bad URL %q: want http://host:port/path", raw)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	conn, err := net.DialTimeout("tcp", host, timeout)
	if err != nil {
		return 0, "", fmt.Errorf("connect %s: %w", host, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, "", err
	}
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: flywheel-healthcheck\r\n\r\n", u.RequestURI(), u.Host); err != nil {
		return 0, "", fmt.Errorf("send to %s: %w", host, err)
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, "", fmt.Errorf("read from %s: %w", host, err)
	}
	var proto string
	var status int
	if _, err := fmt.Sscanf(line, "%s %d", &proto, &status); err != nil || !strings.HasPrefix(proto, "HTTP/") {
		return 0, "", fmt.Errorf("%s answered %q, not HTTP", host, strings.TrimSpace(line))
	}
	for { // headers
		h, err := r.ReadString('\n')
		if err != nil || strings.TrimSpace(h) == "" {
			break
		}
	}
	b, _ := io.ReadAll(io.LimitReader(r, 512))
	return status, strings.TrimSpace(string(b)), nil
}
