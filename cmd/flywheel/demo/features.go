package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

var demoFeatures = []string{"txn_count_1h", "txn_count_24h", "amount_sum_24h", "amount_avg_24h", "distinct_merchants_24h", "last_country"}

func (c Config) post(ctx context.Context, service, path string, body any) ([]byte, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.Services[service]+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, out)
	}
	return out, nil
}

func (c Config) onlineFeatures(ctx context.Context, cards []string) ([][]any, error) {
	refs := make([]string, len(demoFeatures))
	for i, f := range demoFeatures {
		refs[i] = "card_activity:" + f
	}
	out, err := c.post(ctx, "features", "/get-online-features", map[string]any{"features": refs, "entities": map[string]any{"card_id": cards}})
	if err != nil {
		return nil, err
	}
	var resp struct {
		Results []struct{ Values []any } `json:"results"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, err
	}
	rows := make([][]any, len(cards))
	for i := range cards {
		for _, col := range resp.Results[1:] {
			rows[i] = append(rows[i], col.Values[i])
		}
	}
	return rows, nil
}

func printFeatureTable(out io.Writer, cards []string, rows [][]any) {
	fmt.Fprintf(out, "    %-7s", "card")
	for _, f := range demoFeatures {
		fmt.Fprintf(out, " %22s", f)
	}
	fmt.Fprintln(out)
	for i, c := range cards {
		fmt.Fprintf(out, "    %-7s", c)
		for _, v := range rows[i] {
			if f, ok := v.(float64); ok {
				fmt.Fprintf(out, " %22.2f", f)
			} else {
				fmt.Fprintf(out, " %22v", v)
			}
		}
		fmt.Fprintln(out)
	}
}

// liveFeatures shows online values for a few cards, sends one more transaction through ingest
// and shows the values move.
func liveFeatures(ctx context.Context, cfg Config, out io.Writer) error {
	cards := []string{"c-001", "c-002", "c-003"}
	before, err := cfg.onlineFeatures(ctx, cards)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "  POST /get-online-features, now:")
	printFeatureTable(out, cards, before)

	tx := NewGenerator(uint64(time.Now().UnixNano()), "demo-live-"+cfg.Run, 1).Next(time.Now())
	tx.CardID, tx.Amount, tx.Country = "c-001", 999.99, "JP"
	if _, err := cfg.post(ctx, "ingest", "/v1/streams/transactions/events", tx); err != nil {
		return err
	}
	fmt.Fprintf(out, "  sent one more transaction for c-001 (999.99, JP) through ingest...\n")
	var after [][]any
	err = waitFor(ctx, 20*time.Second, func() (bool, error) {
		var err error
		after, err = cfg.onlineFeatures(ctx, cards)
		return err == nil && len(after) > 0 && after[0][0] != before[0][0], err
	})
	if err != nil {
		return fmt.Errorf("the new transaction did not reach the online store: %w", err)
	}
	printFeatureTable(out, cards, after)
	return nil
}

// trainingSet exports a small point-in-time training set: features of a few transactions as
// of each one's own time.
func trainingSet(ctx context.Context, cfg Config, out io.Writer) error {
	now := time.Now().UTC()
	var rows []map[string]any
	for i, c := range []string{"c-001", "c-002", "c-003"} {
		for _, ago := range []time.Duration{5 * time.Hour, 2 * time.Hour, 10 * time.Minute} {
			rows = append(rows, map[string]any{"card_id": c, "event_timestamp": now.Add(-ago - time.Duration(i)*time.Minute).Format(time.RFC3339)})
		}
	}
	refs := make([]string, len(demoFeatures))
	for i, f := range demoFeatures {
		refs[i] = "card_activity:" + f
	}
	body, err := cfg.post(ctx, "features", "/v1/features/historical", map[string]any{"features": refs, "entity_rows": rows})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  POST /v1/features/historical with %d entity rows -> NDJSON, each row as of its own timestamp:\n", len(rows))
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		var vals []string
		for _, f := range demoFeatures {
			vals = append(vals, fmt.Sprintf("%s=%v", f, line["card_activity:"+f]))
		}
		fmt.Fprintf(out, "    %s @ %s: %s\n", line["card_id"], line["event_timestamp"], strings.Join(vals, " "))
	}
	return nil
}
