package drift

import "math"

// The distribution of the one-sample two-sided Kolmogorov–Smirnov statistic
// Dₙ = supₓ |Fₙ(x) − F(x)| of n observations, which scipy's two-sample "asymp" p-value uses
// (kstwo.sf(D, round(n₁n₂/(n₁+n₂)))). The method is chosen as Simard and L'Ecuyer (2011,
// "Computing the two-sided Kolmogorov–Smirnov distribution", J. Stat. Software 39(11)) and
// scipy 1.10 (stats/_ksstats.py) choose it, with the same cut-offs, so results agree with
// scipy to rounding:
//
//	nd ≤ 1            Ruben–Gambino closed form
//	nd ≥ n − 1        2(1 − d)ⁿ
//	d ≥ 1/2           2 × the exact one-sided (Smirnov) tail
//	n ≤ 140:          nd² ≤ 0.754693 Durbin matrix; nd² ≤ 4 Pomeranz recursion; else 2 × Smirnov
//	n > 140:          nd² ≥ 370 → 0; nd² ≥ 2.2 → 2 × Smirnov; else 1 − CDF with the CDF from
//	                  the Durbin matrix when n ≤ 100,000 and n·d^1.5 ≤ 1.4, else Pelz–Good

const (
	two128  = 0x1p128
	twoM128 = 0x1p-128
	minLog  = -7.451332191019412076235e2 // log(2⁻¹⁰⁷⁵): cephes' MINLOG, below which exp underflows
)

func clip01(p float64) float64 { return math.Max(0, math.Min(1, p)) }

// powf returns b^k for k ≥ 0, accurate to about one rounding (math.Pow loses bits for large
// integer exponents).
func powf(b float64, k int) float64 { return powInt(dd{b, 0}, k).float().hi }

// kstwoSF returns P(Dₙ ≥ d) (scipy.stats.kstwo.sf(d, n)).
func kstwoSF(n int, d float64) float64 {
	if n <= 0 || math.IsNaN(d) {
		return math.NaN()
	}
	if d >= 1 {
		return 0
	}
	if d <= 0 {
		return 1
	}
	fn := float64(n)
	t := fn * d
	if t <= 1 {
		// Ruben–Gambino: for 1/2n ≤ d ≤ 1/n, P(Dₙ ≤ d) = n!/nⁿ (2nd − 1)ⁿ.
		if t <= 0.5 {
			return 1
		}
		var cdf float64
		if n <= 140 {
			cdf = 1
			for i := 1; i <= n; i++ {
				cdf *= float64(i) * (1 / fn) * (2*t - 1)
			}
		} else {
			lg, _ := math.Lgamma(fn + 1)
			cdf = math.Exp(lg - fn*math.Log(fn) + fn*math.Log(2*t-1))
		}
		return clip01(1 - cdf)
	}
	if t >= fn-1 {
		return clip01(2 * powf(1-d, n))
	}
	if d >= 0.5 {
		return clip01(2 * smirnovSF(n, d))
	}
	ndd := t * d
	if n <= 140 {
		switch {
		case ndd <= 0.754693:
			return clip01(1 - durbinCDF(n, d))
		case ndd <= 4:
			return clip01(1 - pomeranzCDF(n, d))
		default:
			return clip01(2 * smirnovSF(n, d))
		}
	}
	if ndd >= 370 {
		return 0
	}
	if ndd >= 2.2 {
		return clip01(2 * smirnovSF(n, d))
	}
	var cdf float64
	if n <= 100000 && fn*math.Pow(d, 1.5) <= 1.4 {
		cdf = durbinCDF(n, d)
	} else {
		cdf = pelzGoodCDF(n, d)
	}
	return clip01(1 - cdf)
}

// durbinCDF returns P(Dₙ < d) by Durbin's matrix formula as Marsaglia, Tsang and Wang (2003)
// evaluate it: with k = ⌈nd⌉, h = k − nd and m = 2k − 1, the probability is n!/nⁿ times the
// (k, k) element of Hⁿ, H the m×m matrix with H[i][j] = 1/(i−j+1)! (zero when i−j+1 < 0)
// whose first column and last row are corrected by the powers of h. Hⁿ is computed by
// repeated squaring, rescaled by 2⁻¹²⁸ whenever it grows past 2¹²⁸.
func durbinCDF(n int, d float64) float64 {
	if d >= 1 {
		return 1
	}
	fn := float64(n)
	nd := fn * d
	if nd <= 0.5 {
		return 0
	}
	k := int(math.Ceil(nd))
	h := float64(k) - nd
	m := 2*k - 1

	inv := make([]float64, m+1) // inv[j] = 1/j!
	inv[0] = 1
	for j := 1; j <= m; j++ {
		inv[j] = inv[j-1] / float64(j)
	}
	H := make([]float64, m*m)
	for i := range m {
		for j := 0; j <= min(i+1, m-1); j++ {
			H[i*m+j] = inv[i-j+1]
		}
	}
	v := make([]float64, m) // first column; reversed, the last row
	for j := range m {
		v[j] = (1 - powf(h, j+1)) * inv[j+1]
	}
	v[m-1] = (1 + powf(max(2*h-1, 0), m) - 2*powf(h, m)) * inv[m]
	for i := range m {
		H[i*m] = v[i]
		H[(m-1)*m+i] = v[m-1-i]
	}

	P := make([]float64, m*m)
	for i := range m {
		P[i*m+i] = 1
	}
	tmp := make([]float64, m*m)
	pExp, hExp := 0, 0
	for nn := n; nn > 0; nn /= 2 {
		if nn%2 == 1 {
			matMul(tmp, P, H, m)
			P, tmp = tmp, P
			pExp += hExp
		}
		matMul(tmp, H, H, m)
		H, tmp = tmp, H
		hExp *= 2
		if math.Abs(H[(k-1)*m+k-1]) > two128 {
			for i := range H {
				H[i] *= twoM128
			}
			hExp += 128
		}
	}
	p := P[(k-1)*m+k-1]
	for i := 1; i <= n; i++ { // × n!/nⁿ
		p = float64(i) * p / fn
		if math.Abs(p) < twoM128 {
			p *= two128
			pExp -= 128
		}
	}
	return math.Ldexp(p, pExp)
}

// matMul sets dst = a·b for m×m row-major matrices.
func matMul(dst, a, b []float64, m int) {
	clear(dst)
	for i := range m {
		row := dst[i*m : (i+1)*m]
		for l := range m {
			ail := a[i*m+l]
			if ail == 0 {
				continue
			}
			bl := b[l*m : (l+1)*m]
			for j := range row {
				row[j] += ail * bl[j]
			}
		}
	}
}

// pomeranzCDF returns P(Dₙ < d) by Pomeranz's recursion (1974), for n ≤ 140.
//
// With Y₍₁₎ < … < Y₍ₙ₎ the order statistics of n uniforms scaled to [0, n] and t = nd,
// Dₙ < d exactly when k − t < Y₍ₖ₎ < k − 1 + t for every k. Writing t = l + f (l integer,
// 0 ≤ f < 1) and g = min(f, 1 − f), the bounds k − t and k − 1 + t fall at j + g and
// j + 1 − g in each unit cell [j, j + 1), so [0, n] splits into 2n + 1 gaps of lengths g,
// 1 − 2g, 2g, 1 − 2g, …, 2g, 1 − 2g, g. The number of points below each boundary must stay
// within limits (derived below); the counts falling in the gaps are multinomial, so the
// probability is n! times a sum over admissible count paths of Π (Δᵢ/n)^cᵢ / cᵢ!, which the
// recursion accumulates gap by gap over the admissible cumulative counts.
func pomeranzCDF(n int, d float64) float64 {
	fn := float64(n)
	t := fn * d
	l := int(math.Floor(t))
	f := t - float64(l)
	g := math.Min(f, 1-f)
	// bounds on N(A), the count at or below boundary point A: at least the k of every
	// upper bound k − 1 + t ≤ A, at most k − 1 for every lower bound k − t ≥ A. For the
	// point j + g (first) and j + 1 − g (second) of cell j that gives:
	bounds := func(j int, second bool) (lo, hi int) {
		switch {
		case f == 0: // both kinds of bound sit on the integers
			if second {
				lo, hi = j-l+2, j+l
			} else {
				lo, hi = j-l+1, j+l-1
			}
		case f <= 0.5: // j + f is an upper bound, j + 1 − f a lower one
			lo, hi = j-l+1, j+l
		default: // j + 1 − f is a lower bound, j + f an upper one
			if second {
				lo, hi = j-l+1, j+l+1
			} else {
				lo, hi = j-l, j+l
			}
		}
		return max(lo, 0), min(hi, n)
	}
	maxJump := min(n, 2*l+3)
	powers := func(gap float64) []float64 { // (gap/n)^c / c!
		p := make([]float64, maxJump+1)
		p[0] = 1
		for c := 1; c <= maxJump; c++ {
			p[c] = p[c-1] * (gap / fn) / float64(c)
		}
		return p
	}
	pg, p2g, p12g := powers(g), powers(2*g), powers(1-2*g)

	cur := make([]float64, n+1)
	next := make([]float64, n+1)
	cur[0] = 1
	curLo, curHi := 0, 0
	exp := 0
	step := func(pw []float64, lo, hi int) {
		top := 0.0
		for c := lo; c <= hi; c++ {
			s := 0.0
			for c0 := max(curLo, c-maxJump); c0 <= min(c, curHi); c0++ {
				s += cur[c0] * pw[c-c0]
			}
			next[c] = s
			top = math.Max(top, s)
		}
		clear(cur)
		cur, next = next, cur
		curLo, curHi = lo, hi
		if top > 0 && top < twoM128 {
			for c := lo; c <= hi; c++ {
				cur[c] *= two128
			}
			exp -= 128
		}
	}
	for j := range n {
		pw := p2g
		if j == 0 {
			pw = pg
		}
		lo, hi := bounds(j, false)
		if lo > hi {
			return 0
		}
		step(pw, lo, hi)
		lo, hi = bounds(j, true)
		if lo > hi {
			return 0
		}
		step(p12g, lo, hi)
	}
	step(pg, n, n)
	p := cur[n]
	for i := 1; i <= n; i++ { // × n!
		if p > two128 {
			p *= twoM128
			exp += 128
		}
		p *= float64(i)
	}
	return math.Ldexp(p, exp)
}

// pelzGoodCDF returns the Pelz–Good (1976) approximation of P(Dₙ ≤ d): the Li-Chien /
// Korolyuk expansion K₀(z) + K₁(z)/√n + K₂(z)/n + K₃(z)/n^{3/2} at z = d√n, each Kᵢ put in
// the theta-function form that converges for small z, with scipy's truncation (⌈16z/π⌉ terms).
func pelzGoodCDF(n int, d float64) float64 {
	if d <= 0 {
		return 0
	}
	if d >= 1 {
		return 1
	}
	const (
		pi2 = math.Pi * math.Pi
		pi4 = pi2 * pi2
		pi6 = pi4 * pi2
	)
	sqrt2pi := math.Sqrt(2 * math.Pi)
	z := math.Sqrt(float64(n)) * d
	z2, z3, z4, z6 := z*z, z*z*z, z*z*z*z, z*z*z*z*z*z
	qlog := -pi2 / 8 / z2
	if qlog < -708 {
		return 0
	}
	q := math.Exp(qlog)
	k1a, k1b := -z2, pi2/4
	k2a, k2b, k2c := 6*z6+2*z4, (2*z4-5*z2)*pi2/4, pi4*(1-2*z2)/16
	k3d := pi6 * (5 - 30*z2) / 64
	k3c := pi4 * (-60*z2 + 212*z4) / 16
	k3b := pi2 * (135*z4 - 96*z6) / 4
	k3a := -30*z6 - 90*z6*z2

	var K [4]float64
	// Σ over odd m = 2k−1 of c(m)·q^(m²), by Horner in q⁸ᵏ.
	maxk := int(math.Ceil(16 * z / math.Pi))
	for k := maxk; k >= 1; k-- {
		m := float64(2*k - 1)
		m2 := m * m
		m4, m6 := m2*m2, m2*m2*m2
		qp := math.Pow(q, float64(8*k))
		c := [4]float64{1, k1a + k1b*m2, k2a + k2b*m2 + k2c*m4, k3a + k3b*m2 + k3c*m4 + k3d*m6}
		for i := range K {
			K[i] = K[i]*qp + c[i]
		}
	}
	div := [4]float64{z, 6 * z4, 72 * z4 * z3, 6480 * z6 * z4}
	for i := range K {
		K[i] = K[i] * q * sqrt2pi / div[i]
	}
	// The terms over all integers k in K₂ and K₃.
	q = math.Exp(-pi2 / 2 / z2)
	var e2, e3 float64
	sqrt3z := math.Sqrt(3) * z
	for k := maxk; k >= 1; k-- {
		kf := float64(k)
		k2 := kf * kf
		qk := math.Pow(q, k2)
		e2 += k2 * qk
		kpi := math.Pi * kf
		e3 += (sqrt3z + kpi) * (sqrt3z - kpi) * k2 * qk
	}
	K[2] += e2 * pi2 * sqrt2pi / (-36 * z3)
	K[3] += e3 * pi2 * sqrt2pi / (216 * z6)
	fn := float64(n)
	return K[0] + K[1]/math.Sqrt(fn) + K[2]/fn + K[3]/(fn*math.Sqrt(fn))
}

// smirnovSF returns P(Dₙ⁺ ≥ x), the exact one-sided Kolmogorov–Smirnov tail
// (scipy.special.smirnov), by the Smirnov / Birnbaum–Tingey sum
//
//	P(Dₙ⁺ ≥ x) = x Σ_{v=0}^{⌊n(1−x)⌋} C(n, v) (x + v/n)^(v−1) (1 − x − v/n)^(n−v)
//
// with every term in double-double arithmetic (as scipy does since 1.2), stopping once the
// remaining terms cannot change the sum; above n = 10⁶ it uses the approximation
// exp(−(6nx + 1)²/18n).
func smirnovSF(n int, x float64) float64 {
	if !(n > 0 && x >= 0 && x <= 1) {
		return math.NaN()
	}
	if n == 1 {
		return 1 - x
	}
	if x == 0 {
		return 1
	}
	if x == 1 {
		return 0
	}
	fn := float64(n)
	nx := twoProd(fn, x) // exact
	fl := math.Floor(nx.hi)
	if fl == nx.hi && nx.lo < 0 {
		fl--
	}
	exact := nx.hi == fl && nx.lo == 0 // nx is an integer
	nxfl := int(fl)
	if nxfl == 0 || (nxfl == 1 && exact) { // x ≤ 1/n: P(Dₙ⁺ < x) = x(1 + x)^(n−1)
		return 1 - x*powInt(twoSum(1, x), n-1).float().hi
	}
	if -2*fn*x*x < minLog {
		return 0
	}
	if nxfl >= n-1 {
		return powInt(twoSum(1, -x), n).float().hi
	}
	if n > 1000000 {
		logp := -math.Pow(6*fn*x+1, 2) / 18 / fn
		if logp < -math.Ln2 {
			return math.Exp(logp)
		}
		return 1 + math.Expm1(logp)
	}
	// The term with 1 − x − v/n = 0 (when nx is an integer) is zero, so the sum runs to
	// n − ⌊nx⌋ − 1 either way.
	last := n - nxfl - 1
	xd := dd{x, 0}
	sum := powInt(twoSum(1, -x), n).float().mul(ddQuo(1, x)) // v = 0: (1 − x)ⁿ / x
	binom := sdd{m: dd{0.5, 0}, e: 1}                        // C(n, v)
	for v := 1; v <= last; v++ {
		binom = binom.mul(scaled(ddQuo(float64(n-v+1), float64(v))))
		up := ddQuo(float64(v), fn).add(xd)     // x + v/n
		down := ddQuo(float64(n-v), fn).sub(xd) // 1 − x − v/n
		term := binom.mul(powInt(up, v-1)).mul(powInt(down, n-v)).float()
		if term.hi != 0 {
			sum = sum.add(term)
			if v != last && 4*float64(last+1-v)*math.Abs(term.hi) < 0x1p-52*sum.hi {
				break
			}
		} else if v > n/2 {
			break
		}
	}
	return sum.mul(xd).hi
}

// kolmogorovSF returns the limiting distribution's tail P(K > x), K = sup|Brownian bridge|
// (scipy.stats.kstwobign.sf, scipy.special.kolmogorov): √(2π)/x Σ e^{−(2k−1)²π²/8x²} for
// x ≤ 0.82, else 2 Σ (−1)^{k−1} e^{−2k²x²}. scipy's ks_2samp does not use it (its "asymp" is
// kstwo); it is here to show the difference in tests.
func kolmogorovSF(x float64) float64 {
	if math.IsNaN(x) {
		return math.NaN()
	}
	if x <= math.Pi/math.Sqrt(8*746) { // the series underflows: P = 1
		return 1
	}
	if x <= 0.82 {
		w := math.Sqrt(2*math.Pi) / x
		logu8 := -math.Pi * math.Pi / (x * x)
		u := math.Exp(logu8 / 8)
		var p float64
		if u == 0 {
			p = math.Exp(logu8/8 + math.Log(w))
		} else {
			u8 := math.Exp(logu8)
			p = 1 + u8*u8*u8
			p = 1 + u8*u8*p
			p = 1 + u8*p
			p *= w * u
		}
		return clip01(1 - p)
	}
	v := math.Exp(-2 * x * x)
	v3 := v * v * v
	p := 1 - v3*v3*v // 1 − v⁷(1)
	p = 1 - v3*v*v*p
	p = 1 - v3*p
	return clip01(2 * v * p)
}
