package store

import (
	"maps"
	"sync"
)

// runCache keeps the last document and revision this process wrote for runs it is writing,
// so a log-batch updates with the cached revision instead of reading the run first. A stale
// entry (another process wrote the run) fails the revision check and is dropped.
type runCache struct {
	mu sync.Mutex
	m  map[string]cachedRun
}

type cachedRun struct {
	run Run
	rev uint64
}

// maxCachedRuns bounds the cache; past it, it starts over.
const maxCachedRuns = 10_000

func (c *runCache) get(id string) (Run, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok {
		return Run{}, 0, false
	}
	return e.run.clone(), e.rev, true
}

func (c *runCache) put(r Run, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedRuns {
		c.m = make(map[string]cachedRun)
	}
	c.m[r.ID] = cachedRun{run: r.clone(), rev: rev}
}

func (c *runCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

// clone copies r deeply enough that changing the copy never changes r.
func (r Run) clone() Run {
	c := r
	c.Params, c.Tags, c.Metrics = maps.Clone(r.Params), maps.Clone(r.Tags), maps.Clone(r.Metrics)
	if r.EndTime != nil {
		end := *r.EndTime
		c.EndTime = &end
	}
	if r.Inputs != nil {
		c.Inputs = make([]DatasetInput, len(r.Inputs))
		for i, in := range r.Inputs {
			c.Inputs[i] = DatasetInput{Dataset: in.Dataset, Tags: maps.Clone(in.Tags)}
		}
	}
	return c
}
