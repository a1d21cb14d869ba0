// Command servebench prepares serving's load benchmark (bench/serving.sh): it writes the
// card_activity state of N cards into Redis, exactly as the features service stores it, and
// trains two fraud models on synthetic data — logistic regression and a 200-tree, depth-6
// GBDT over the card_activity features (all but last_txn_time, a time string) and the 4
// request-time fields — into a serving model
// cache, so serving starts with them without a registry. It also writes vegeta targets.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flywheel-ml/flywheel/ml/artifact"
	"github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/ml/gbdt"
	"github.com/flywheel-ml/flywheel/ml/linear"
	"github.com/flywheel-ml/flywheel/ml/profile"
	"github.com/flywheel-ml/flywheel/services/features"
	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/extract"
	"github.com/flywheel-ml/flywheel/services/features/online"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

var (
	categories = []string{"grocery", "fuel", "electronics", "travel", "restaurants", "fashion"}
	channels   = []string{"pos", "ecom", "atm"}
	countries  = []string{"DE", "FR", "NL", "ES", "IT", "PL", "US"}
)

func main() {
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis address")
	prefix := flag.String("prefix", "fw:f:", "online store key prefix")
	cards := flag.Int("cards", 10000, "cards to seed")
	cache := flag.String("cache", "", "serving model cache directory to write the models into")
	targets := flag.String("targets", "", "directory for vegeta targets (predict_<model>.json, v2_<model>.json)")
	url := flag.String("url", "http://127.0.0.1:18084", "serving's base URL, for the targets")
	flag.Parse()
	if err := run(*redisAddr, *prefix, *cards, *cache, *targets, *url); err != nil {
		fmt.Fprintln(os.Stderr, "servebench:", err)
		os.Exit(1)
	}
}

func run(redisAddr, prefix string, cards int, cacheDir, targetsDir, url string) error {
	ctx := context.Background()
	cat, err := features.LoadViews("")
	if err != nil {
		return err
	}
	view, _ := cat.Get("card_activity")
	if err := seed(ctx, redisAddr, prefix, view, cards); err != nil {
		return err
	}
	var names []string
	for _, f := range view.Features {
		// last_txn_time is an RFC 3339 time string, not a number a model reads
		if f.Name != "last_txn_time" {
			names = append(names, "card_activity:"+f.Name)
		}
	}
	frame := synthetic(names, 50_000)
	for _, m := range []struct {
		name  string
		train func(*dataset.Frame) (*artifact.Artifact, error)
	}{{"fraud", logistic}, {"fraud_gbdt", boosted}} {
		a, err := m.train(frame)
		if err != nil {
			return fmt.Errorf("train %s: %w", m.name, err)
		}
		a.Model = m.name
		if err := writeCache(cacheDir, m.name, a); err != nil {
			return err
		}
		if targetsDir != "" {
			if err := writeTargets(targetsDir, url, m.name, cards, names); err != nil {
				return err
			}
		}
	}
	return nil
}

// seed writes each card's state after a week of payments.
func seed(ctx context.Context, addr, prefix string, view *views.View, cards int) error {
	client := redis.NewClient(&redis.Options{Addr: addr})
	defer client.Close()
	store := online.New(client, prefix)
	engine, x := agg.NewEngine(view), extract.New(view)
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	var entities []string
	var blobs [][]byte
	for c := range cards {
		card := fmt.Sprintf("c-%d", c)
		st := engine.NewState()
		n := 5 + rng.IntN(40)
		for i := range n {
			at := now.Add(-time.Duration(n-i) * 7 * 24 * time.Hour / time.Duration(n+1))
			ev := map[string]any{"card_id": card, "amount": math.Round(rng.ExpFloat64()*6000) / 100,
				"merchant_id": fmt.Sprintf("m-%d", rng.IntN(500)), "country": countries[rng.IntN(3)],
				"event_time": at.UTC().Format(time.RFC3339Nano)}
			_, vals, err := x.FromMap(ev)
			if err != nil {
				return fmt.Errorf("extract: %w", err)
			}
			engine.Apply(st, agg.Event{Time: at.UnixMilli(), Vals: vals})
		}
		entities = append(entities, card)
		blobs = append(blobs, engine.Encode(nil, st))
		if len(entities) == 1000 || c == cards-1 {
			if err := store.PutStates(ctx, view, entities, blobs); err != nil {
				return fmt.Errorf("write states to %s: %w", addr, err)
			}
			entities, blobs = entities[:0], blobs[:0]
		}
	}
	return nil
}

// synthetic is a labelled frame with the fraud model's inputs: fraud is likelier for large
// amounts against the card's average, many countries, high velocity and online payments.
func synthetic(featureNames []string, rows int) *dataset.Frame {
	rng := rand.New(rand.NewPCG(3, 4))
	f := &dataset.Frame{}
	add := func(name string, kind dataset.Kind) int {
		f.Names, f.Kinds = append(f.Names, name), append(f.Kinds, kind)
		f.Cols = append(f.Cols, make([]float64, rows))
		return len(f.Cols) - 1
	}
	amount, mcc, channel, country := add("amount", dataset.Numeric), add("merchant_category", dataset.Categorical),
		add("channel", dataset.Categorical), add("country", dataset.Categorical)
	feat := map[string]int{}
	for _, n := range featureNames {
		kind := dataset.Numeric
		if n == "card_activity:last_country" {
			kind = dataset.Categorical
		}
		feat[n] = add(n, kind)
	}
	f.Label = make([]float64, rows)
	for i := range rows {
		avg := 20 + rng.ExpFloat64()*40
		a := rng.ExpFloat64() * avg
		cnt1h := float64(rng.IntN(4))
		countriesSeen := float64(1 + rng.IntN(3))
		ch := rng.IntN(len(channels))
		f.Cols[amount][i], f.Cols[mcc][i], f.Cols[channel][i], f.Cols[country][i] = a, float64(rng.IntN(len(categories))), float64(ch), float64(rng.IntN(len(countries)))
		for n, j := range feat {
			v := rng.Float64() * 50
			switch n {
			case "card_activity:amount_avg_24h", "card_activity:amount_avg_7d":
				v = avg
			case "card_activity:txn_count_1h":
				v = cnt1h
			case "card_activity:distinct_countries_24h":
				v = countriesSeen
			case "card_activity:last_country":
				v = float64(rng.IntN(len(countries)))
			}
			if rng.Float64() < 0.03 {
				v = math.NaN()
			}
			f.Cols[j][i] = v
		}
		z := -4 + 1.2*math.Log1p(a/avg) + 0.6*cnt1h + 0.5*(countriesSeen-1) + map[int]float64{0: 0, 1: 0.8, 2: 0.4}[ch]
		if rng.Float64() < 1/(1+math.Exp(-z)) {
			f.Label[i] = 1
		}
	}
	return f
}

func signature(f *dataset.Frame) []artifact.Feature {
	out := make([]artifact.Feature, len(f.Names))
	vocab := map[string][]string{"merchant_category": categories, "channel": channels, "country": countries, "card_activity:last_country": countries}
	for j, n := range f.Names {
		out[j] = artifact.Feature{Name: n, Kind: f.Kinds[j].String(), Source: "request", Vocabulary: vocab[n]}
		if len(n) > 14 && n[:14] == "card_activity:" {
			out[j].Source = "feature"
		}
	}
	return out
}

func finish(f *dataset.Frame, a *artifact.Artifact) (*artifact.Artifact, error) {
	a.Task, a.Threshold, a.Signature = "binary", 0.5, signature(f)
	p := a.Predictor()
	preds := make([]float64, f.Rows())
	row := make([]float64, len(f.Cols))
	for i := range preds {
		preds[i] = p.Predict(f.Row(i, row))
	}
	prof, err := profile.Build(f, preds, profile.Options{SampleSize: 500, Seed: 1})
	if err != nil {
		return nil, err
	}
	a.Profile = prof
	return a, nil
}

func logistic(f *dataset.Frame) (*artifact.Artifact, error) {
	m, err := linear.TrainLogistic(context.Background(), f, linear.Params{Standardize: true})
	if err != nil {
		return nil, err
	}
	return finish(f, &artifact.Artifact{Algorithm: artifact.Logistic, Linear: m})
}

func boosted(f *dataset.Frame) (*artifact.Artifact, error) {
	m, err := gbdt.Train(context.Background(), f, gbdt.Params{Objective: gbdt.Binary, NumTrees: 200, LearningRate: 0.1,
		MaxDepth: 6, MinSamplesLeaf: 20, L2: 1, Seed: 7}, nil)
	if err != nil {
		return nil, err
	}
	return finish(f, &artifact.Artifact{Algorithm: artifact.GBDT, GBDT: m})
}

func writeCache(dir, name string, a *artifact.Artifact) error {
	b, err := artifact.Encode(a)
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	d := filepath.Join(dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d, "v1.flywheel"), b, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d, "aliases.json"), []byte(`{"champion":1}`), 0o644)
}

// writeTargets writes vegeta JSON targets cycling through the cards: the own API with one
// instance, and the V2 infer call with one column per input by name.
func writeTargets(dir, url, model string, cards int, _ []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	own, err := os.Create(filepath.Join(dir, "predict_"+model+".json"))
	if err != nil {
		return err
	}
	defer own.Close()
	v2, err := os.Create(filepath.Join(dir, "v2_"+model+".json"))
	if err != nil {
		return err
	}
	defer v2.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	header := map[string][]string{"Content-Type": {"application/json"}}
	for c := range cards {
		card, amount := fmt.Sprintf("c-%d", c), math.Round(rng.ExpFloat64()*6000)/100
		mcc, ch, co := categories[rng.IntN(len(categories))], channels[rng.IntN(len(channels))], countries[rng.IntN(3)]
		body, _ := json.Marshal(map[string]any{"instances": []map[string]any{{"card_id": card, "amount": amount,
			"merchant_category": mcc, "channel": ch, "country": co}}})
		if err := json.NewEncoder(own).Encode(map[string]any{"method": "POST", "url": url + "/v1/models/" + model + ":predict",
			"body": body, "header": header}); err != nil {
			return err
		}
		inputs := []map[string]any{
			{"name": "card_id", "datatype": "BYTES", "shape": []int{1}, "data": []string{card}},
			{"name": "amount", "datatype": "FP64", "shape": []int{1}, "data": []float64{amount}},
			{"name": "merchant_category", "datatype": "BYTES", "shape": []int{1}, "data": []string{mcc}},
			{"name": "channel", "datatype": "BYTES", "shape": []int{1}, "data": []string{ch}},
			{"name": "country", "datatype": "BYTES", "shape": []int{1}, "data": []string{co}},
		}
		body, _ = json.Marshal(map[string]any{"inputs": inputs})
		if err := json.NewEncoder(v2).Encode(map[string]any{"method": "POST", "url": url + "/v2/models/" + model + "/infer",
			"body": body, "header": header}); err != nil {
			return err
		}
	}
	return nil
}
