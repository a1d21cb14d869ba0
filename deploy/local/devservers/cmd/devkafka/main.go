// Command devkafka is a tiny single-process Kafka-protocol broker for local
// development and tests. It wraps github.com/twmb/franz-go/pkg/kfake.
//
// It is NOT Apache Kafka: one process, one broker, no replication. It speaks
// enough of the protocol for kcat, franz-go, kafka-go and librdkafka clients
// (produce, fetch, consumer groups, committed offsets, transactions) and,
// with -data-dir, persists topics, records, groups and committed offsets
// across restarts.
//
// kfake always binds its listeners to 127.0.0.1 (its newListener builds
// "127.0.0.1:PORT"); only the port is configurable, which is exactly what a
// dev broker wants. The advertised address in metadata responses is the
// listener address, 127.0.0.1:PORT.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

// stdLogger adapts kfake's logger interface to the standard library logger.
type stdLogger struct {
	l     *log.Logger
	level kfake.LogLevel
}

func (s stdLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	if level > s.level || level == kfake.LogLevelNone {
		return
	}
	s.l.Printf("level=%s component=kfake msg=%q", level, fmt.Sprintf(format, args...))
}

func parseLevel(s string) (kfake.LogLevel, error) {
	switch strings.ToLower(s) {
	case "none", "off":
		return kfake.LogLevelNone, nil
	case "error", "err":
		return kfake.LogLevelError, nil
	case "warn", "warning":
		return kfake.LogLevelWarn, nil
	case "info":
		return kfake.LogLevelInfo, nil
	case "debug":
		return kfake.LogLevelDebug, nil
	}
	return kfake.LogLevelNone, fmt.Errorf("unknown log level %q (none|error|warn|info|debug)", s)
}

func main() {
	var (
		port       = flag.Int("port", 9092, "TCP port to listen on (always bound to 127.0.0.1)")
		dataDir    = flag.String("data-dir", "", "directory persisting topics, records, groups and committed offsets across restarts (empty: in memory only)")
		partitions = flag.Int("partitions", 3, "default number of partitions for auto-created topics and CreateTopics with -1 partitions")
		syncWrites = flag.Bool("sync-writes", true, "fsync every produced batch (only meaningful with -data-dir)")
		autoCreate = flag.Bool("auto-create", true, "create topics on metadata requests that ask for auto-creation (kcat -P to a missing topic hangs otherwise)")
		clusterID  = flag.String("cluster-id", "flywheel-dev", "cluster ID returned in metadata responses")
		logLevel   = flag.String("log-level", "warn", "kfake log level: none|error|warn|info|debug")
	)
	flag.Parse()

	logger := log.New(os.Stderr, "devkafka ", log.LstdFlags|log.Lmicroseconds|log.LUTC)

	lvl, err := parseLevel(*logLevel)
	if err != nil {
		logger.Fatalf("level=error msg=%q", err.Error())
	}
	if *port <= 0 || *port > 65535 {
		logger.Fatalf("level=error msg=%q", fmt.Sprintf("invalid -port %d", *port))
	}
	if *partitions < 1 {
		logger.Fatalf("level=error msg=%q", fmt.Sprintf("invalid -partitions %d", *partitions))
	}

	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(*port),
		kfake.ClusterID(*clusterID),
		kfake.DefaultNumPartitions(*partitions),
		kfake.WithLogger(stdLogger{l: logger, level: lvl}),
	}
	if *autoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if *dataDir != "" {
		abs, err := filepath.Abs(*dataDir)
		if err != nil {
			logger.Fatalf("level=error msg=%q", err.Error())
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			logger.Fatalf("level=error msg=%q", err.Error())
		}
		*dataDir = abs
		opts = append(opts, kfake.DataDir(abs))
		if *syncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}

	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			logger.Fatalf("level=error msg=%q port=%d", "cannot listen: "+err.Error(), *port)
		}
		logger.Fatalf("level=error msg=%q", "starting kfake cluster: "+err.Error())
	}

	logger.Printf("level=info msg=%q addrs=%q data_dir=%q partitions=%d sync_writes=%t auto_create=%t pid=%d",
		"listening", strings.Join(cluster.ListenAddrs(), ","), *dataDir, *partitions,
		*syncWrites && *dataDir != "", *autoCreate, os.Getpid())

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	sig := <-sigs
	logger.Printf("level=info msg=%q signal=%q", "shutting down", sig.String())
	signal.Stop(sigs)

	// Close flushes persisted state (topics, groups, committed offsets)
	// to the data dir before returning.
	cluster.Close()
	logger.Printf("level=info msg=%q", "stopped")
}
