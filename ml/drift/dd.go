package drift

import "math"

// Double-double arithmetic (hi + lo, about 32 significant digits), used where the one-sided
// Kolmogorov–Smirnov sum raises numbers near 1 to powers in the tens of thousands: a plain
// float64 power there loses about log2(exponent) bits to rounding, which is what scipy avoids
// with the same technique. Only the few operations that sum needs are here.

type dd struct{ hi, lo float64 }

// twoSum returns a+b exactly as hi+lo (Knuth).
func twoSum(a, b float64) dd {
	s := a + b
	bb := s - a
	return dd{s, (a - (s - bb)) + (b - bb)}
}

// fastTwoSum is twoSum for |a| ≥ |b|.
func fastTwoSum(a, b float64) dd {
	s := a + b
	return dd{s, b - (s - a)}
}

// twoProd returns a·b exactly as hi+lo.
func twoProd(a, b float64) dd {
	p := a * b
	return dd{p, math.FMA(a, b, -p)}
}

// ddQuo returns a/b to double-double precision.
func ddQuo(a, b float64) dd {
	q := a / b
	return fastTwoSum(q, math.FMA(-q, b, a)/b)
}

func (x dd) add(y dd) dd {
	s := twoSum(x.hi, y.hi)
	t := twoSum(x.lo, y.lo)
	s = fastTwoSum(s.hi, s.lo+t.hi)
	return fastTwoSum(s.hi, s.lo+t.lo)
}

func (x dd) sub(y dd) dd { return x.add(dd{-y.hi, -y.lo}) }

func (x dd) mul(y dd) dd {
	p := twoProd(x.hi, y.hi)
	return fastTwoSum(p.hi, p.lo+(x.hi*y.lo+x.lo*y.hi))
}

// sdd is a double-double significand with a separate binary exponent, m·2^e with
// |m.hi| in [0.5, 1), so products of many factors neither overflow nor underflow.
type sdd struct {
	m dd
	e int
}

func scaled(x dd) sdd {
	if x.hi == 0 {
		return sdd{}
	}
	f, e := math.Frexp(x.hi)
	return sdd{dd{f, math.Ldexp(x.lo, -e)}, e}
}

func (x sdd) mul(y sdd) sdd {
	r := scaled(x.m.mul(y.m))
	r.e += x.e + y.e
	return r
}

// float returns the value as a double-double (zero when it underflows).
func (x sdd) float() dd {
	return dd{math.Ldexp(x.m.hi, x.e), math.Ldexp(x.m.lo, x.e)}
}

// powInt returns b^k for k ≥ 0 by binary powering in double-double, so the result keeps
// nearly full double precision even for k in the millions.
func powInt(b dd, k int) sdd {
	r := sdd{m: dd{0.5, 0}, e: 1}
	x := scaled(b)
	for ; k > 0; k >>= 1 {
		if k&1 == 1 {
			r = r.mul(x)
		}
		if k > 1 {
			x = x.mul(x)
		}
	}
	return r
}
