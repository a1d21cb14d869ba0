package learner_test

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/artifact"
	mldataset "github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/schemas/modelspec"
	"github.com/flywheel-ml/flywheel/services/trainer/dataset"
	"github.com/flywheel-ml/flywheel/services/trainer/learner"
)

func built(seed uint64, n int, vocab []string) *dataset.Built {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := &dataset.Built{Frame: &mldataset.Frame{Names: []string{"amount", "channel"}, Kinds: []mldataset.Kind{mldataset.Numeric, mldataset.Categorical},
		Cols: [][]float64{make([]float64, n), make([]float64, n)}, Label: make([]float64, n)},
		Columns: []dataset.Column{{Name: "amount", Kind: "numeric", Source: "request"}, {Name: "channel", Kind: "categorical", Source: "request", Vocabulary: vocab}}}
	for i := range n {
		amount := rng.Float64() * 100
		ch := rng.IntN(len(vocab))
		b.Frame.Cols[0][i], b.Frame.Cols[1][i] = amount, float64(ch)
		if amount > 70 && vocab[ch] == "ecom" || rng.Float64() < 0.03 {
			b.Frame.Label[i] = 1
		}
	}
	return b
}

func spec() *modelspec.Spec {
	return &modelspec.Spec{Name: "fraud", Task: modelspec.Binary, Threshold: 0.5,
		Algorithm: modelspec.Algorithm{Name: "gbdt", Params: map[string]any{"num_trees": 30, "max_depth": 4, "min_samples_leaf": 10}}}
}

func TestTrainScoreEncodeLoad(t *testing.T) {
	b := built(1, 3000, []string{"atm", "ecom", "pos"})
	rows := make([]int, 2400)
	for i := range rows {
		rows[i] = i
	}
	test := make([]int, 600)
	for i := range test {
		test[i] = 2400 + i
	}
	l := learner.Learner{}
	rounds := 0
	m, err := l.Train(context.Background(), spec(), b, rows, 7, func(int, map[string]float64) { rounds++ })
	if err != nil {
		t.Fatal(err)
	}
	if rounds != 30 {
		t.Fatalf("progress reported %d rounds, want 30", rounds)
	}
	scores, err := m.Score(b, test)
	if err != nil {
		t.Fatal(err)
	}
	labels := make([]float64, len(test))
	for i, r := range test {
		labels[i] = b.Frame.Label[r]
	}
	met := learner.Evaluate(modelspec.Binary, labels, scores, 0.5)
	if met["auc"] < 0.9 {
		t.Fatalf("auc %v on an easy problem", met["auc"])
	}
	art, err := m.Encode(met)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := l.Train(context.Background(), spec(), b, rows, 7, func(int, map[string]float64) {})
	art2, _ := again.Encode(met)
	if string(art) != string(art2) {
		t.Fatal("training twice with the same seed must give the same artifact")
	}
	loaded, err := l.Load(art)
	if err != nil {
		t.Fatal(err)
	}
	// A dataset built later saw another vocabulary: the loaded model maps values by name.
	other := built(1, 3000, []string{"atm", "ecom", "pos"})
	reordered := &dataset.Built{Frame: &mldataset.Frame{Names: other.Frame.Names, Kinds: other.Frame.Kinds,
		Cols: [][]float64{other.Frame.Cols[0], make([]float64, 3000)}, Label: other.Frame.Label},
		Columns: []dataset.Column{other.Columns[0], {Name: "channel", Kind: "categorical", Source: "request", Vocabulary: []string{"ecom", "moto", "pos", "atm"}}}}
	remap := map[float64]float64{0: 3, 1: 0, 2: 2}
	for i, v := range other.Frame.Cols[1] {
		reordered.Frame.Cols[1][i] = remap[v]
	}
	s1, _ := loaded.Score(b, test)
	s2, err := loaded.Score(reordered, test)
	if err != nil {
		t.Fatal(err)
	}
	for i := range s1 {
		if math.Abs(s1[i]-s2[i]) > 0 {
			t.Fatalf("row %d: %v vs %v — categorical values must be matched by name, not code", i, s1[i], s2[i])
		}
	}
}

func TestUnknownParameterIsNamed(t *testing.T) {
	s := spec()
	s.Algorithm.Params["num_tress"] = 5
	_, err := learner.Learner{}.Train(context.Background(), s, built(1, 100, []string{"a", "ecom"}), []int{0, 1, 2}, 1, func(int, map[string]float64) {})
	if err == nil || err.Error()[:len("algorithm.params.num_tress")] != "algorithm.params.num_tress" {
		t.Fatalf("want an error naming the parameter, got %v", err)
	}
}

func TestLogisticThroughTheLearner(t *testing.T) {
	b := built(2, 2000, []string{"atm", "ecom", "pos"})
	rows := make([]int, 1500)
	for i := range rows {
		rows[i] = i
	}
	s := spec()
	s.Algorithm = modelspec.Algorithm{Name: "logistic", Params: map[string]any{"l2": 1.0}}
	l := learner.Learner{}
	m, err := l.Train(context.Background(), s, b, rows, 1, func(int, map[string]float64) {})
	if err != nil {
		t.Fatal(err)
	}
	art, err := m.Encode(map[string]float64{"auc": 0.8})
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := l.Load(art)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.Score(b, []int{1600, 1700})
	c, _ := loaded.Score(b, []int{1600, 1700})
	if a[0] != c[0] || a[1] != c[1] || !(a[0] > 0 && a[0] < 1) {
		t.Fatalf("scores %v vs %v", a, c)
	}
}

// TestPredictionReferenceIsHeldOut: the profile's prediction reference is the model's
// scores on the rows it did not train on (600 here), not its in-sample scores (2,400), for
// GBDT and for logistic regression.
func TestPredictionReferenceIsHeldOut(t *testing.T) {
	b := built(3, 3000, []string{"atm", "ecom", "pos"})
	rows := make([]int, 2400)
	for i := range rows {
		rows[i] = i
	}
	for _, algo := range []string{"gbdt", "logistic"} {
		sp := spec()
		sp.Algorithm.Name = algo
		if algo == "logistic" {
			sp.Algorithm.Params = nil
		}
		m, err := learner.Learner{}.Train(context.Background(), sp, b, rows, 7, func(int, map[string]float64) {})
		if err != nil {
			t.Fatal(err)
		}
		var prof struct {
			Rows        int `json:"rows"`
			Predictions struct {
				Rows int `json:"rows"`
			} `json:"predictions"`
		}
		if err := json.Unmarshal(m.Profile(), &prof); err != nil {
			t.Fatal(err)
		}
		if prof.Rows != 2400 || prof.Predictions.Rows != 600 {
			t.Fatalf("%s: profile of %d rows with a prediction reference of %d, want 2400 and the 600 held out", algo, prof.Rows, prof.Predictions.Rows)
		}
	}
}

// TestServedEncodingMatchesTraining: a request encoded as serving encodes it (the
// artifact's signature encoders) scores what the trainer scored for the same row.
func TestServedEncodingMatchesTraining(t *testing.T) {
	vocab := []string{"pos", "atm", "ecom"} // not sorted: codes are the vocabulary's order
	b := built(5, 3000, vocab)
	rows := make([]int, 3000)
	for i := range rows {
		rows[i] = i
	}
	m, err := learner.Learner{}.Train(context.Background(), spec(), b, rows, 7, func(int, map[string]float64) {})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := m.Encode(map[string]float64{"auc": 0.9})
	if err != nil {
		t.Fatal(err)
	}
	a, err := artifact.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Score(b, rows[:200])
	if err != nil {
		t.Fatal(err)
	}
	p := a.Predictor()
	for i, r := range rows[:200] {
		request := map[string]any{"amount": b.Frame.Cols[0][r], "channel": vocab[int(b.Frame.Cols[1][r])]}
		row := make([]float64, len(a.Signature))
		for j, f := range a.Signature {
			v, err := f.Encoder().Encode(request[f.Name])
			if err != nil {
				t.Fatal(err)
			}
			row[j] = v
		}
		if got := p.Predict(row); math.Abs(got-want[i]) > 1e-12 {
			t.Fatalf("row %d (%v): served %v, trainer %v", r, request, got, want[i])
		}
	}
}
