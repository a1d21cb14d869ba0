package linear

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"

	"github.com/flywheel-ml/flywheel/ml/dataset"
)

// Params configure training.
type Params struct {
	// L2 is the penalty λ on the weights (not the intercept): logistic minimises
	// Σ logloss + λ/2·‖w‖² (scikit-learn's C = 1/λ), ridge Σ squared error + λ·‖w‖²
	// (scikit-learn's alpha = λ). Default 1.
	L2 float64
	// Standardize scales numeric inputs to zero mean and unit variance before fitting (the
	// penalty then applies to the standardised weights). scikit-learn's estimators do not.
	Standardize bool
	MaxIter     int     // logistic: L-BFGS iterations; default 200
	Tol         float64 // logistic: gradient norm to stop at; default 1e-4 (scikit-learn's tol)
	Workers     int     // 0: GOMAXPROCS
}

func (p Params) withDefaults() (Params, error) {
	if p.L2 == 0 {
		p.L2 = 1
	}
	if p.L2 < 0 || math.IsNaN(p.L2) {
		return p, fmt.Errorf("linear: L2 must be ≥ 0, got %v", p.L2)
	}
	if p.MaxIter <= 0 {
		p.MaxIter = 200
	}
	if p.Tol <= 0 {
		p.Tol = 1e-4
	}
	if p.Workers <= 0 {
		p.Workers = runtime.GOMAXPROCS(0)
	}
	return p, nil
}

// design fits the preprocessing and returns the model skeleton, the expanded row-major
// design matrix (n × width, no intercept column) and the L2 penalty of each weight. Numeric
// columns are always standardised for the fit — the optimiser converges in a fraction of the
// steps on well-scaled data — and the penalty is rescaled per weight when the caller asked
// for the raw-scale objective (λ‖w‖² on the raw weights is Σ λ/s² v² on the standardised
// ones), so the minimiser is the same; unstandardize then converts the weights back.
func design(f *dataset.Frame, standardize bool, l2 float64) (*Model, []float64, int, []float64, error) {
	if err := f.Validate(); err != nil {
		return nil, nil, 0, nil, err
	}
	n := f.Rows()
	if n == 0 {
		return nil, nil, 0, nil, dataset.ErrNoRows
	}
	m := &Model{Inputs: make([]Input, len(f.Cols))}
	width := 0
	for j, col := range f.Cols {
		in := &m.Inputs[j]
		in.Offset = width
		if f.Kinds[j] == dataset.Categorical {
			seen := map[int32]bool{}
			for _, v := range col {
				if v == v {
					seen[int32(v)] = true
				}
			}
			for c := range seen {
				in.Categories = append(in.Categories, c)
			}
			sort.Slice(in.Categories, func(a, b int) bool { return in.Categories[a] < in.Categories[b] })
			in.Categorical = true
		} else {
			var sum, cnt float64
			for _, v := range col {
				if v == v && !math.IsInf(v, 0) {
					sum += v
					cnt++
				}
			}
			if cnt > 0 {
				in.Mean = sum / cnt
			}
			in.Scale = 1
			var ss float64
			for _, v := range col {
				if v == v && !math.IsInf(v, 0) {
					ss += (v - in.Mean) * (v - in.Mean)
				}
			}
			if sd := math.Sqrt(ss / math.Max(cnt, 1)); sd > 0 {
				in.Scale = sd
			}
			in.Center = in.Mean
		}
		width += in.width()
	}
	x := make([]float64, n*width)
	for j, col := range f.Cols {
		in := &m.Inputs[j]
		for i, v := range col {
			row := x[i*width:]
			if in.Categorical {
				if v == v {
					if k := sort.Search(len(in.Categories), func(k int) bool { return in.Categories[k] >= int32(v) }); k < len(in.Categories) && in.Categories[k] == int32(v) {
						row[in.Offset+k] = 1
					}
				}
				continue
			}
			if v != v || math.IsInf(v, 0) {
				v = in.Mean
			}
			row[in.Offset] = (v - in.Center) / in.Scale
		}
	}
	m.Weights = make([]float64, width)
	pen := make([]float64, width)
	for j := range m.Inputs {
		in := &m.Inputs[j]
		for k := range in.width() {
			pen[in.Offset+k] = l2
			if !standardize && !in.Categorical {
				pen[in.Offset+k] = l2 / (in.Scale * in.Scale)
			}
		}
	}
	return m, x, width, pen, nil
}

// unstandardize rewrites the numeric weights for raw inputs: w·(v−c)/s = (w/s)·v − w·c/s.
func (m *Model) unstandardize() {
	for j := range m.Inputs {
		in := &m.Inputs[j]
		if in.Categorical {
			continue
		}
		w := m.Weights[in.Offset] / in.Scale
		m.Intercept -= w * in.Center
		m.Weights[in.Offset] = w
		in.Center, in.Scale = 0, 1
	}
}

// TrainLogistic fits a binary logistic regression on f (labels 0/1).
func TrainLogistic(ctx context.Context, f *dataset.Frame, p Params) (*Model, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	m, x, d, pen, err := design(f, p.Standardize, p.L2)
	if err != nil {
		return nil, err
	}
	m.Kind = Logistic
	y := f.Label
	n := len(y)
	for i, v := range y {
		if v != 0 && v != 1 {
			return nil, fmt.Errorf("linear: label of row %d is %v; logistic regression needs 0 or 1", i, v)
		}
	}
	chunks := p.Workers
	parts := make([][]float64, chunks) // per-worker gradient accumulators
	losses := make([]float64, chunks)
	for i := range parts {
		parts[i] = make([]float64, d+1)
	}
	// The objective is scaled by 1/n (same minimiser) so the tolerance means what it does in
	// scikit-learn, whose lbfgs also works on the mean loss.
	eval := func(w []float64, grad []float64) float64 {
		var wg sync.WaitGroup
		for c := range chunks {
			wg.Go(func() {
				g := parts[c]
				clear(g)
				loss := 0.0
				lo, hi := c*n/chunks, (c+1)*n/chunks
				for i := lo; i < hi; i++ {
					row := x[i*d : (i+1)*d]
					z := w[d]
					for k, v := range row {
						z += w[k] * v
					}
					// log(1 + e^z) - y z, computed stably
					if z > 0 {
						loss += z + math.Log1p(math.Exp(-z)) - y[i]*z
					} else {
						loss += math.Log1p(math.Exp(z)) - y[i]*z
					}
					r := sigmoid(z) - y[i]
					for k, v := range row {
						g[k] += r * v
					}
					g[d] += r
				}
				losses[c] = loss
			})
		}
		wg.Wait()
		loss := 0.0
		for c := range chunks {
			loss += losses[c]
		}
		inv := 1 / float64(n)
		reg := 0.0
		for k := 0; k < d; k++ {
			reg += pen[k] * w[k] * w[k]
		}
		if grad != nil {
			for k := range grad {
				s := 0.0
				for c := range chunks {
					s += parts[c][k]
				}
				grad[k] = s * inv
			}
			for k := 0; k < d; k++ {
				grad[k] += pen[k] * w[k] * inv
			}
		}
		return (loss + reg/2) * inv
	}
	// gonum asks for the value and the gradient at the same point separately; one pass over
	// the data computes both, so the last point's results are kept.
	var lastW, lastGrad []float64
	var lastLoss float64
	both := func(w []float64) {
		if lastW != nil && slices.Equal(lastW, w) {
			return
		}
		if lastGrad == nil {
			lastGrad = make([]float64, d+1)
		}
		lastLoss = eval(w, lastGrad)
		lastW = append(lastW[:0], w...)
	}
	problem := optimize.Problem{
		Func: func(w []float64) float64 { both(w); return lastLoss },
		Grad: func(grad, w []float64) { both(w); copy(grad, lastGrad) },
	}
	settings := &optimize.Settings{MajorIterations: p.MaxIter, GradientThreshold: p.Tol, // on the mean loss, as scikit-learn ≥ 1.2 scales it
		Converger: &optimize.FunctionConverge{Absolute: 1e-12, Relative: 1e-12, Iterations: 20}}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	res, err := optimize.Minimize(problem, make([]float64, d+1), settings, &optimize.LBFGS{Store: 10})
	if err != nil && !errors.Is(err, optimize.ErrLinesearcherFailure) && res == nil {
		return nil, fmt.Errorf("linear: L-BFGS: %w", err)
	}
	copy(m.Weights, res.X[:d])
	m.Intercept = res.X[d]
	if !p.Standardize {
		m.unstandardize()
	}
	if err := m.Validate(len(f.Cols)); err != nil {
		return nil, fmt.Errorf("linear: the fit diverged: %w", err)
	}
	return m, ctx.Err()
}

// TrainRidge fits ridge regression on f: min Σ (y - Xw - b)² + λ‖w‖², solved exactly on the
// centred normal equations.
func TrainRidge(ctx context.Context, f *dataset.Frame, p Params) (*Model, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	m, x, d, pen, err := design(f, p.Standardize, p.L2)
	if err != nil {
		return nil, err
	}
	m.Kind = Ridge
	y := f.Label
	n := len(y)
	xm := make([]float64, d)
	ym := 0.0
	for i := range n {
		row := x[i*d : (i+1)*d]
		for k, v := range row {
			xm[k] += v
		}
		ym += y[i]
	}
	for k := range xm {
		xm[k] /= float64(n)
	}
	ym /= float64(n)
	// XᵀX and Xᵀy of the centred data, accumulated per worker.
	chunks := p.Workers
	gram := make([][]float64, chunks)
	xty := make([][]float64, chunks)
	var wg sync.WaitGroup
	for c := range chunks {
		gram[c], xty[c] = make([]float64, d*d), make([]float64, d)
		wg.Go(func() {
			g, b := gram[c], xty[c]
			cent := make([]float64, d)
			for i := c * n / chunks; i < (c+1)*n/chunks; i++ {
				row := x[i*d : (i+1)*d]
				for k, v := range row {
					cent[k] = v - xm[k]
				}
				yc := y[i] - ym
				for a := range d {
					va := cent[a]
					if va == 0 {
						continue
					}
					b[a] += va * yc
					ga := g[a*d:]
					for bb := a; bb < d; bb++ {
						ga[bb] += va * cent[bb]
					}
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	A := mat.NewSymDense(d, nil)
	bv := mat.NewVecDense(d, nil)
	for a := range d {
		s := 0.0
		for c := range chunks {
			s += xty[c][a]
		}
		bv.SetVec(a, s)
		for bb := a; bb < d; bb++ {
			s := 0.0
			for c := range chunks {
				s += gram[c][a*d+bb]
			}
			if a == bb {
				s += pen[a]
			}
			A.SetSym(a, bb, s)
		}
	}
	var chol mat.Cholesky
	var w mat.VecDense
	if ok := chol.Factorize(A); ok {
		if err := chol.SolveVecTo(&w, bv); err != nil {
			return nil, fmt.Errorf("linear: ridge solve: %w", err)
		}
	} else if err := w.SolveVec(A, bv); err != nil {
		return nil, fmt.Errorf("linear: ridge solve (the features are collinear and L2 is 0?): %w", err)
	}
	for k := range d {
		m.Weights[k] = w.AtVec(k)
	}
	m.Intercept = ym
	for k := range d {
		m.Intercept -= m.Weights[k] * xm[k]
	}
	if !p.Standardize {
		m.unstandardize()
	}
	if err := m.Validate(len(f.Cols)); err != nil {
		return nil, err
	}
	return m, nil
}

// PredictFrame scores every row of f into out.
func (m *Model) PredictFrame(f *dataset.Frame, out []float64) {
	row := make([]float64, len(f.Cols))
	for i := range out {
		out[i] = m.Predict(f.Row(i, row))
	}
}
