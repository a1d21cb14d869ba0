package artifact_test

import (
	"math"
	"testing"

	"github.com/flywheel-ml/flywheel/ml/artifact"
)

func TestEncoderMatchesTheVocabularyAndSaysWhatIsWrong(t *testing.T) {
	channel := artifact.Feature{Name: "channel", Kind: "categorical", Vocabulary: []string{"atm", "ecom", "pos"}}.Encoder()
	amount := artifact.Feature{Name: "amount", Kind: "numeric"}.Encoder()
	code := artifact.Feature{Name: "mcc", Kind: "categorical"}.Encoder()
	for _, c := range []struct {
		enc  *artifact.Encoder
		in   any
		want float64
	}{
		{channel, "pos", 2}, {channel, "atm", 0}, {channel, "branch", math.NaN()}, {channel, nil, math.NaN()},
		{amount, 12.5, 12.5}, {amount, "12.5", 12.5}, {amount, 3, 3}, {amount, true, 1},
		{code, 7.0, 7}, {code, "7", 7},
	} {
		got, err := c.enc.Encode(c.in)
		if err != nil || !(got == c.want || math.IsNaN(got) && math.IsNaN(c.want)) {
			t.Errorf("Encode(%v) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct {
		enc *artifact.Encoder
		in  any
	}{{amount, "lots"}, {code, "7.5"}, {code, "x"}, {amount, []int{1}}} {
		if _, err := c.enc.Encode(c.in); err == nil {
			t.Errorf("Encode(%v) accepted", c.in)
		}
	}
}
