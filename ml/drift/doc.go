// Package drift holds the drift monitor's statistics: two-sample tests and distances between
// a production window and a model's reference profile, thresholds calibrated on the
// reference by resampling, Benjamini–Hochberg across features and a persistence rule for
// events. It is pure computation (no Kafka, Redis, NATS or ClickHouse); the monitor's
// adapters feed it windows and store what it returns.
//
// # Statistics
//
// Missing values (NaN) are left out of every statistic and counted (KSResult.Missing1/2,
// Score.Missing). The definitions follow scipy 1.10 and Evidently, and are tested against
// scipy's values (tolerance below).
//
//   - KS (KSTwoSample): D = maxₓ |F₁(x) − F₂(x)| over all pooled values, both empirical CDFs
//     right-continuous, so ties count as scipy.stats.ks_2samp counts them; D is computed in
//     integers and reported as h/lcm(n₁, n₂). Two-sided p-value as ks_2samp: KSExact is the
//     exact null distribution for two samples of a continuous distribution (paths through
//     the n₁×n₂ lattice, computed as probabilities, Viehmann 2021; the reflection formula
//     when n₁ = n₂); KSAsymp is kstwo.sf(D, round(n₁n₂/(n₁+n₂))), the exact one-sample KS
//     distribution at the effective size (Simard–L'Ecuyer method selection: Ruben–Gambino,
//     Durbin matrix, Pomeranz, Pelz–Good, Smirnov's one-sided sum in double-double), not the
//     Kolmogorov limit; KSAuto is exact up to max(n₁, n₂) = 10,000.
//   - Wasserstein: W₁ = ∫ |F_u − F_v| dx between the empirical distributions;
//     NormedWasserstein (Evidently's "wasserstein") divides by the reference's population
//     standard deviation, floored at 0.001.
//   - JensenShannon: √((KL(p‖m) + KL(q‖m))/2) with p, q scaled to sum 1 and m = (p+q)/2,
//     0·log 0 = 0 (so empty bins need no smoothing); natural log (Evidently, range
//     [0, √ln 2]) or any base (base 2: range [0, 1]).
//   - PSI: Σ (aᵢ − eᵢ) ln(aᵢ/eᵢ) over shares; a zero share, in either histogram, becomes
//     PSIEpsilon = 10⁻⁴, without renormalising (Evidently's rule differs only when some
//     non-zero share is itself ≤ 10⁻⁴).
//   - L∞ (LInf): maxᵢ |pᵢ − qᵢ| between the two frequency vectors.
//   - Chi-square: ChiSquareContingency is chi2_contingency (Yates' correction only when
//     dof = 1); ChiSquareGoodnessOfFit is Evidently's scipy.stats.chisquare of the current
//     counts against the reference counts rescaled to the current total, dof = k − 1.
//     p-values from the chi-square survival function (gonum).
//
// # Against a profile
//
// A Reference (NewReference, References) holds one feature's profile entry and the
// non-missing values of its column of the profile's raw sample. KS and normed Wasserstein
// compare a window with that sample (numeric features only). PSI, Jensen–Shannon,
// chi-square (2×k contingency of [reference counts; window counts], bins empty in both left
// out) and L∞ compare the window binned with the profile's convention — edges
// e₀ < … < eₖ₋₁, bin 0 holds v ≤ e₀, bin i holds eᵢ₋₁ < v ≤ eᵢ, bin k holds v > eₖ₋₁, the
// rule of profile.Profile.Bin (a test pins the two together) — with the profile's own bin
// counts, which cover every reference row, not just the sample. A categorical feature has a
// bin per reference code, ascending, and one for codes the reference never saw.
//
// # Calibration
//
// A fixed threshold either floods big windows with alarms or misses real shifts (the shared
// bench README, part B). Calibrate instead estimates, for one reference, method and window
// size n, the statistic's distribution under no drift from the reference alone, and sets
// the threshold at its (1 − α) quantile (α = 1 % by default): B = 1999 draws, threshold
// the ⌈(1 − α)(B + 1)⌉-th smallest, so a new null statistic, exchangeable with the draws,
// exceeds it with probability at most α. Null.PValue, (1 + #{draws ≥ s})/(B + 1), is the
// matching p-value, for Benjamini–Hochberg across features whatever the method.
//
// Raw-sample methods (KS, Wasserstein) use a pooled bootstrap: each draw compares a window
// of n values with a reference of m values, both drawn with replacement from the m-value
// sample. The statistic in production compares a window with the sample, and both carry
// sampling noise: the window's (~1/n) and the sample's own deviation from the population
// (~1/m). Drawing the window from the sample and comparing it with the sample itself leaves
// the second out and underestimates the null, badly once n approaches m (measured: 32 %
// false alarms for KS at n = 10,000 with a 5,000-value sample); splitting the sample in
// halves, drawing from one and comparing with the other, doubles it and is conservative
// (0 % false alarms but weaker detection at n = 500). The pooled bootstrap reproduces both
// terms at their sizes: for N(0,1) samples of 5,000 its KS thresholds average within 0.15 %
// of kstwo.isf(α, round(en)), the continuous two-sample quantile, at n = 500, 1,000 and
// 10,000, so the ties resampling creates do not bias it. What no scheme can do is know the
// sample's own error: the rate is α
// averaged over draws of the reference, as for scipy's two-sample p-value, and for one
// stored sample it varies around α, the more so the larger n is against m (at n = 2m most
// samples give 0 % and a few give 10 % or more). An effect-size floor
// (CalibrationOptions.Floors) above the sample's noise removes that tail and keeps trivially
// small shifts on huge windows quiet.
//
// The bootstrap learns the null from the sample, so it fails where the sample cannot show
// it: normed Wasserstein on a feature without a finite mean (Cauchy) — windows bring values
// far beyond the sample's range, which dominate W₁. cmd/driftbench measured that feature
// rejected in 6.2 % of stationary windows of 1,000 at the Benjamini–Hochberg level of a
// 20-feature model (about 0.05 % is due). KS, which sees only ranks, and the binned methods
// are unaffected; use them for heavy-tailed features.
//
// Binned methods use a parametric bootstrap of the profile's bins: window counts drawn
// Multinomial(n, p̂) and reference counts Multinomial(N, p̂), p̂ the profile's shares and N
// its non-missing row count; the sample is not needed, and with N in the hundreds of
// thousands the reference's own noise is negligible.
//
// Draws are seeded per (seed, feature, method, n), so a calibration is reproducible in any
// order and after a restart. A Calibrator caches one Null per (feature, method,
// CalibrationSize(n)), n rounded down to two significant digits (fewer values: a slightly
// wider null, never more alarms).
//
// # Verdicts
//
// BenjaminiHochberg over a model's calibrated p-values at FDR q gives the model-level
// verdict (under no drift at all, any rejection has probability ≤ q); ResamplesFor sizes B
// so that 1/(B+1) ≤ q/k. Persistence raises an event when k of the last n windows drifted,
// then stays quiet for a cooldown.
//
// # Agreement with scipy
//
// Table tests paste the shared bench README's part A (ks_2samp exact, asymp and auto;
// chi2_contingency with and without Yates; Evidently's goodness of fit; wasserstein and the
// normed variant; jensenshannon base e and 2; PSI) and testdata/scipy_reference.json
// (made by testdata/scipy_reference.py with scipy 1.10.1) adds kstwo.sf in each regime,
// ks_2samp with ties and sizes up to 20,000 on both sides of the auto switch, chi2.sf over
// 36 decades and more distances. Tolerance 1e-12 relative throughout; the measured worst
// cases are 4e-15 (kstwo.sf) and 9e-15 (ks_2samp p-values).
package drift
