package model

import (
	"strconv"

	"github.com/flywheel-ml/flywheel/schemas"
)

// MarshalJSON encodes the output as encoding/json would from its tags, without reflection:
// serving logs one per prediction. A NaN or infinite score is an error.
func (o Output) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 48+24*len(o.Scores))
	b = append(b, `{"score":`...)
	var err error
	if b, err = schemas.AppendJSONFloat(b, o.Score); err != nil {
		return nil, err
	}
	if o.Label != nil {
		b = append(b, `,"label":`...)
		b = strconv.AppendInt(b, int64(*o.Label), 10)
	}
	if len(o.Scores) > 0 {
		b = append(b, `,"scores":[`...)
		for i, s := range o.Scores {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = schemas.AppendJSONFloat(b, s); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}
