package runindex_test

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/registry/runindex"
	"github.com/flywheel-ml/flywheel/services/registry/store"
)

// Every alias move reaches ClickHouse's registry_alias_history, on the real NATS and
// ClickHouse: moves made while no registry projected them (it was down), moves made while
// ClickHouse was unreachable (they wait in the audit stream and arrive once it is back), and
// moves projected by two registry processes at once (each row twice, collapsing to one);
// a restarted projection resumes after what ClickHouse holds instead of replaying it.
func TestAliasHistoryProjection(t *testing.T) {
	ctx := testenv.Context(t)
	nc := testenv.NATS(t)
	prefix := testenv.Unique(t, "AH") + "_"
	st, err := store.Open(ctx, nc.JS, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		buckets, streams := store.Names(prefix)
		for _, b := range buckets {
			_ = nc.JS.DeleteKeyValue(context.Background(), b)
		}
		for _, s := range streams {
			_ = nc.JS.DeleteStream(context.Background(), s)
		}
	})
	direct, cfg := testenv.ClickHouse(t)
	if _, err := chx.Migrate(ctx, direct, schemas.ClickHouseMigrations()); err != nil {
		t.Fatal(err)
	}
	// The projection reaches ClickHouse through a proxy the test can cut.
	proxy := newTCPProxy(t, cfg.Addr)
	viaProxy := cfg
	viaProxy.Addr = proxy.addr
	conn, err := chx.Open(ctx, viaProxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	model := testenv.Unique(t, "fraud")
	_, err = st.CreateModel(ctx, store.Model{Name: model})
	must(err)
	_, err = st.CreateVersion(ctx, store.Version{Name: model, RunID: "run-1", Lineage: &store.Lineage{RunID: "run-1", Trigger: "manual"}})
	must(err)
	_, err = st.CreateVersion(ctx, store.Version{Name: model, RunID: "run-2", Lineage: &store.Lineage{RunID: "run-2", Trigger: "drift:d-1"}})
	must(err)
	var moves []store.AliasMove
	move := func(alias string, version int, reason string) {
		t.Helper()
		mv, err := st.SetAlias(ctx, model, alias, version, "trainer", reason)
		must(err)
		moves = append(moves, mv)
	}

	// The registry was down: nobody projected these.
	move("champion", 1, "first model")
	move("challenger", 2, "gates failed: auc")

	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	p1 := runProjection(t, nc.JS, st, conn, log)
	must(p1.WaitForAll(ctx, 10*time.Second))
	checkAliasHistory(t, direct, model, moves)

	// ClickHouse unreachable: the moves wait in the stream and arrive once it is back.
	proxy.stop()
	move("champion", 2, "every gate passed")
	rb, err := st.Rollback(ctx, model, "champion", "oncall", "latency")
	must(err)
	moves = append(moves, rb)
	must(st.DeleteAlias(ctx, model, "challenger", "oncall", "done"))
	if err := p1.WaitForAll(ctx, 1500*time.Millisecond); !errors.Is(err, runindex.ErrBehind) {
		t.Fatalf("with ClickHouse cut off the projection says %v, want it behind", err)
	}
	if n := count(t, direct, "SELECT count() FROM registry_alias_history"); n != 2 {
		t.Fatalf("%d rows while ClickHouse was cut off, want the 2 from before", n)
	}
	proxy.start()
	must(p1.WaitForAll(ctx, 30*time.Second))
	history, err := st.AliasHistory(ctx, model)
	must(err)
	// The deletion's move is only in the audit trail (DeleteAlias returns none).
	i := slices.IndexFunc(history, func(mv store.AliasMove) bool { return mv.Action == store.AliasDeleted })
	if i < 0 || history[i].Alias != "challenger" || history[i].Previous != 2 || history[i].Actor != "oncall" {
		t.Fatalf("audit trail %+v lacks the deletion of challenger", history)
	}
	moves = append(moves, history[i])
	checkAliasHistory(t, direct, model, moves)

	// A second registry process projects the same stream: both insert the next move.
	p2 := runProjection(t, nc.JS, st, conn, log)
	must(p2.WaitForAll(ctx, 10*time.Second))
	move("champion", 2, "manual promotion")
	must(p1.WaitForAll(ctx, 10*time.Second))
	must(p2.WaitForAll(ctx, 10*time.Second))
	checkAliasHistory(t, direct, model, moves)

	// Restarted, a projection resumes after ClickHouse's position: nothing is inserted again.
	p1.stop()
	p2.stop()
	optimize(t, direct)
	move("challenger", 1, "compare")
	p3 := runProjection(t, nc.JS, st, conn, log)
	must(p3.WaitForAll(ctx, 10*time.Second))
	if n, want := count(t, direct, "SELECT count() FROM registry_alias_history"), uint64(len(moves)); n != want {
		t.Fatalf("%d rows after a restart, want %d (one per move, none replayed)", n, want)
	}
	checkAliasHistory(t, direct, model, moves)
}

type projection struct {
	*runindex.Aliases
	stop func()
}

func runProjection(t *testing.T, js jetstream.JetStream, st *store.Store, conn driver.Conn, log *zap.Logger) projection {
	t.Helper()
	p := runindex.NewAliases(js, st.AliasAuditStream(), conn, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("alias history projection: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return projection{Aliases: p, stop: stop}
}

var eventID = regexp.MustCompile(`^[0-9a-f]{24}$`)

// checkAliasHistory compares the model's rows (FINAL: duplicates collapsed) with the moves,
// by alias and revision (a deletion's revision is only ordered among its alias's moves).
func checkAliasHistory(t *testing.T, conn driver.Conn, model string, moves []store.AliasMove) {
	t.Helper()
	want := slices.SortedFunc(slices.Values(moves), func(a, b store.AliasMove) int {
		return cmp.Or(cmp.Compare(a.Alias, b.Alias), cmp.Compare(a.Revision, b.Revision))
	})
	ctx := testenv.Context(t)
	rows, err := conn.Query(ctx, `SELECT model_id, alias, version, previous, action, actor, reason, run_id, trigger, event_id,
		moved_at, moved_at_ms, revision FROM registry_alias_history FINAL WHERE model = ? ORDER BY alias, revision`, model)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for ; rows.Next(); i++ {
		var (
			modelID, alias, action, actor, reason, runID, trigger, event string
			version, previous                                            uint32
			movedAt                                                      time.Time
			movedMs                                                      int64
			revision                                                     uint64
		)
		if err := rows.Scan(&modelID, &alias, &version, &previous, &action, &actor, &reason, &runID, &trigger, &event,
			&movedAt, &movedMs, &revision); err != nil {
			t.Fatal(err)
		}
		if i >= len(want) {
			t.Fatalf("row %d (%s %s v%d) beyond the %d moves", i, alias, action, version, len(want))
		}
		w := want[i]
		wantRun, wantTrigger := "", ""
		switch w.Version {
		case 1:
			wantRun, wantTrigger = "run-1", "manual"
		case 2:
			wantRun, wantTrigger = "run-2", "drift:d-1"
		}
		if modelID != w.ModelID || alias != w.Alias || int(version) != w.Version || int(previous) != w.Previous ||
			action != w.MoveAction() || actor != w.Actor || reason != w.Reason || runID != wantRun || trigger != wantTrigger ||
			event != w.EventID || !eventID.MatchString(event) || movedMs != w.At.UnixMilli() ||
			movedAt.Unix() != w.At.Unix() || revision != w.Revision {
			t.Errorf("row %d: %s %s v%d (previous %d) %s %q %q run %q trigger %q event %q at %d rev %d\nwant move %+v",
				i, modelID, alias, version, previous, action, actor, reason, runID, trigger, event, movedMs, revision, w)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(want) {
		t.Fatalf("%d rows for %s, want %d moves", i, model, len(want))
	}
}

func count(t *testing.T, conn driver.Conn, query string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(testenv.Context(t), query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func optimize(t *testing.T, conn driver.Conn) {
	t.Helper()
	if err := conn.Exec(testenv.Context(t), "OPTIMIZE TABLE registry_alias_history FINAL"); err != nil {
		t.Fatal(err)
	}
}

// tcpProxy forwards connections to a server until stopped: stop closes the listener and every
// connection (the server seems down), start listens on the same address again.
type tcpProxy struct {
	t        *testing.T
	addr     string
	upstream string
	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]bool
}

func newTCPProxy(t *testing.T, upstream string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{t: t, addr: "127.0.0.1:0", upstream: upstream, conns: map[net.Conn]bool{}}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *tcpProxy) start() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may take a moment to be free again
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy listen: %v", err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

func (p *tcpProxy) forward(c net.Conn) {
	u, err := net.Dial("tcp", p.upstream)
	if err != nil {
		_ = c.Close()
		return
	}
	if !p.track(c, u) {
		return
	}
	go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
	_, _ = io.Copy(c, u)
	_ = c.Close()
}

// track registers a connection pair, or closes it when the proxy stopped meanwhile.
func (p *tcpProxy) track(c, u net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		_ = c.Close()
		_ = u.Close()
		return false
	}
	p.conns[c], p.conns[u] = true, true
	return true
}

func (p *tcpProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}
