package redisx_test

import (
	"fmt"
	"testing"

	"github.com/flywheel-ml/flywheel/platform/redisx"
	"github.com/flywheel-ml/flywheel/platform/testenv"
)

func TestPipelinedHashReads(t *testing.T) {
	client, prefix := testenv.Redis(t)
	ctx := testenv.Context(t)
	if err := redisx.Check(client)(ctx); err != nil {
		t.Fatal(err)
	}
	pipe := client.Pipeline()
	for i := range 100 {
		pipe.HSet(ctx, fmt.Sprintf("%sentity:%d", prefix, i), "a", i, "b", i*2)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	pipe = client.Pipeline()
	cmds := make([]interface{ Val() []any }, 100)
	for i := range 100 {
		cmds[i] = pipe.HMGet(ctx, fmt.Sprintf("%sentity:%d", prefix, i), "b", "missing", "a")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for i, c := range cmds {
		v := c.Val()
		if v[0] != fmt.Sprint(i*2) || v[1] != nil || v[2] != fmt.Sprint(i) {
			t.Fatalf("entity %d: got %v", i, v)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := (redisx.Config{Addr: "nohost", PoolSize: 1}).Validate(); err == nil {
		t.Fatal("want an error for an address without port")
	}
}
