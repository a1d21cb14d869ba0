package main

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// machine describes where a run ran.
type machine struct {
	CPU        string `json:"cpu"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
	OS         string `json:"os"`
	Kernel     string `json:"kernel,omitempty"`
	MemTotal   string `json:"mem_total,omitempty"`
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				m.MemTotal = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return m
}

// loadSample is the machine's and this process's CPU use at one moment (Linux; zero
// elsewhere).
type loadSample struct {
	at      time.Time
	busy    float64 // seconds of CPU busy on the whole machine since boot (/proc/stat)
	own     float64 // this process's user + system CPU seconds
	loadavg string
}

func sampleLoad() loadSample {
	s := loadSample{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		// cpu user nice system idle iowait irq softirq steal
		for _, i := range []int{1, 2, 3, 6, 7, 8} {
			if i < len(f) {
				v, _ := strconv.ParseFloat(f[i], 64)
				s.busy += v / 100 // USER_HZ
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.own = float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			s.loadavg = strings.Join(f[:3], " ")
		}
	}
	return s
}

// load is what else ran on the machine during a run.
type load struct {
	Wall         float64 `json:"wall_seconds"`
	OwnCPU       float64 `json:"own_cpu_seconds"`
	OtherCPU     float64 `json:"other_cpu_seconds"` // machine busy minus own (tick-sampled; ± a few seconds)
	OtherCores   float64 `json:"other_cores"`       // OtherCPU / Wall: cores other processes used on average
	LoadAvgStart string  `json:"loadavg_start"`
	LoadAvgEnd   string  `json:"loadavg_end"`
}

func (s loadSample) until(e loadSample) load {
	l := load{Wall: e.at.Sub(s.at).Seconds(), OwnCPU: e.own - s.own, LoadAvgStart: s.loadavg, LoadAvgEnd: e.loadavg}
	l.OtherCPU = max(0, (e.busy-s.busy)-l.OwnCPU)
	if l.Wall > 0 {
		l.OtherCores = l.OtherCPU / l.Wall
	}
	return l
}
