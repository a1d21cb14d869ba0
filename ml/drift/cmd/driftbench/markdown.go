package main

import (
	"fmt"
	"math"
	"strings"
)

func pct(k, n int) string {
	if n == 0 {
		return "–"
	}
	p := 100 * float64(k) / float64(n)
	switch {
	case k == 0:
		return fmt.Sprintf("0 (0/%s)", thousands(n))
	case p < 1:
		return fmt.Sprintf("%.2f %% (%d/%s)", p, k, thousands(n))
	}
	return fmt.Sprintf("%.1f %% (%d/%s)", p, k, thousands(n))
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// cell is "median / max, share within 3" of a detection summary.
func cell(r runs, capW int) string {
	T := len(r.First)
	if r.Detected == 0 {
		return fmt.Sprintf("none in %d", capW)
	}
	med := fmt.Sprintf("%g", r.Median)
	if math.IsInf(r.Median, 0) {
		med = fmt.Sprintf("> %d", capW)
	}
	mx := fmt.Sprint(r.Max)
	if r.Max == 0 {
		mx = fmt.Sprintf("> %d", capW)
	}
	return fmt.Sprintf("%s / %s · %s", med, mx, short(r.Within3, T))
}

func short(k, n int) string {
	p := 100 * float64(k) / float64(n)
	if k == n {
		return "100 %"
	}
	if p >= 99.5 || p < 1 {
		return fmt.Sprintf("%.1f %%", p)
	}
	return fmt.Sprintf("%.0f %%", p)
}

func markdown(res *results) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	cfg := res.Config
	p("## driftbench\n\n")
	p("Machine: %s, %d CPUs (GOMAXPROCS %d, %d workers), %s, %s, kernel %s. Seed %d; reference %s rows (profile: %d bins, %s-row sample, %s bytes of JSON).\n",
		res.Machine.CPU, res.Machine.CPUs, res.Machine.GOMAXPROCS, cfg.Workers, res.Machine.Go, res.Machine.OS, res.Machine.Kernel,
		cfg.Seed, thousands(cfg.RefRows), res.Profile.Bins, thousands(res.Profile.SampleRows), thousands(res.Profile.JSONBytes))
	p("Run: %.0f s wall, %.0f CPU-s own; other processes used %.0f CPU-s (%.2f cores on average); load average %s at the start, %s at the end.\n\n",
		res.Load.Wall, res.Load.OwnCPU, res.Load.OtherCPU, res.Load.OtherCores, res.Load.LoadAvgStart, res.Load.LoadAvgEnd)
	m := res.Monitor
	if cfg.Numeric != "" || cfg.Categorical != "" {
		p("**Not the monitor's defaults:** methods overridden with -numeric/-categorical.\n\n")
	}
	p("Monitor: numeric %s, categorical %s, predictions %s; α = %g, B = %d, floors %v; Benjamini–Hochberg at FDR α over the features; event when %d of the last %d windows drifted (the window itself among them).\n\n",
		m.Numeric, m.Categorical, m.Predictions, m.Alpha, m.Resamples, m.Floors, m.PersistK, m.PersistN)

	if len(res.FA) > 0 || len(res.Detect) > 0 {
		p("| n | rule | false alarms (stationary windows) |")
		var conds []condition
		for _, c := range res.Conditions[1:] {
			conds = append(conds, c)
			p(" %s (%s) |", c.Name, c.Feature)
		}
		p("\n| --- | --- | --- |%s\n", strings.Repeat(" --- |", len(conds)))
		for si, n := range cfg.Sizes {
			var fa *faCell
			for i := range res.FA {
				if res.FA[i].N == n {
					fa = &res.FA[i]
				}
			}
			det := func(cond string) *detectCell {
				for i := range res.Detect {
					if res.Detect[i].N == n && res.Detect[i].Condition == cond {
						return &res.Detect[i]
					}
				}
				return nil
			}
			row := func(name string, faText string, runOf func(*detectCell) string) {
				p("| %s | %s | %s |", thousands(n), name, faText)
				for _, c := range conds {
					if d := det(c.Name); d != nil {
						p(" %s |", runOf(d))
					} else {
						p(" – |")
					}
				}
				p("\n")
			}
			faOf := func(f func(*faCell) int) string {
				if fa == nil {
					return "–"
				}
				return pct(f(fa), fa.Windows)
			}
			row("**monitor**, window verdict", faOf(func(c *faCell) int { return c.Data }), func(d *detectCell) string { return cell(d.Verdict, d.Cap) })
			row("**monitor**, event (2 of 3)", faOf(func(c *faCell) int { return c.Events }), func(d *detectCell) string { return cell(d.Event, d.Cap) })
			for _, rule := range rules {
				name := rule + ", any of 16 numeric"
				if rule == rulePSI {
					name = rule + ", any of 20"
				}
				row(name, faOf(func(c *faCell) int { return c.Fixed[rule] }), func(d *detectCell) string {
					if !applies(rule, conditionNamed(res.Conditions, d.Condition)) {
						return "n/a (numeric rule)"
					}
					return cell(d.Fixed[rule], d.Cap)
				})
			}
			_ = si
		}
		p("\nDetection cells: median / max windows until detected, share of trials detected within 3 windows (trials per cell: %v for sizes %v; at most %d windows per trial, a later detection counts as none).\n\n", cfg.Trials, cfg.Sizes, cfg.Cap)
	}
	if len(res.FA) > 0 {
		p("Stationary windows, more detail:\n\n| n | windows | prediction-drift verdicts | KS / W / PSI on the N(0,1) feature alone | features rejected (of 20, total) | seconds |\n| --- | --- | --- | --- | --- | --- |\n")
		for _, c := range res.FA {
			rej := 0
			for _, r := range c.Rejected {
				rej += r
			}
			p("| %s | %s | %s | %s / %s / %s | %d | %.0f |\n", thousands(c.N), thousands(c.Windows), pct(c.Prediction, c.Windows),
				pct(c.PerFeature[ruleKS], c.Windows), pct(c.PerFeature[ruleW], c.Windows), pct(c.PerFeature[rulePSI], c.Windows), rej, c.Seconds)
		}
		p("\n")
	}
	if len(res.Detect) > 0 {
		p("Changed feature named by the first verdict:\n\n| n | change | trials | named | seconds |\n| --- | --- | --- | --- | --- |\n")
		for _, d := range res.Detect {
			p("| %s | %s | %d | %s | %.0f |\n", thousands(d.N), d.Condition, d.Trials, pct(d.Named, d.Verdict.Detected), d.Seconds)
		}
		p("\n")
	}
	if tp := res.Throughput; tp != nil {
		p("Window path, one goroutine:\n\n| path | n | µs per window | values/s | allocated B/value | allocs/value |\n| --- | --- | --- | --- | --- | --- |\n")
		for _, r := range tp.Paths {
			p("| %s | %s | %.0f | %.2fM | %.1f | %.3f |\n", r.Path, thousands(r.N), r.NsPerWindow/1e3, r.ValuesPerSec/1e6, r.BytesPerValue, r.AllocsPerValue)
		}
		p("\nLive memory while a window is evaluated (n = 10,000, after GC):")
		for k, v := range tp.LiveBytesPerValue {
			p(" %s %.1f B/value;", k, v)
		}
		p(" one calibrated null (feature, method, calibration size) keeps %s bytes.\n", thousands(tp.NullBytes))
	}
	return b.String()
}

func conditionNamed(cs []condition, name string) *condition {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return &condition{}
}
