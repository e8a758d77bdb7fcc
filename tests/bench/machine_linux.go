package main

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// machine describes where the figures were taken.
type machine struct {
	CPUs   int    `json:"nproc"`
	CPU    string `json:"cpu_model"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	CC     string `json:"cc"`
	Python string `json:"python"`
	Date   string `json:"date"`
	Load   string `json:"load_at_start,omitempty"`
	// Virt says whether this is a virtual machine (the CPU's hypervisor
	// flag) and what systemd-detect-virt calls it, when it is installed.
	Virt    string `json:"virtualization"`
	LoadEnd string `json:"load_at_end,omitempty"`
}

func describeMachine(cc, python string) machine {
	m := machine{
		CPUs:   runtime.NumCPU(),
		CPU:    cpuModel(),
		Kernel: firstLine(readFile("/proc/sys/kernel/osrelease")),
		Go:     runtime.Version(),
		CC:     firstLine(output(cc, "--version")),
		Python: firstLine(output(python, "--version")),
		Date:   time.Now().UTC().Format("2006-01-02 15:04 UTC"),
	}
	m.Load = loadAverage()
	m.Virt = virtualization()
	return m
}

func loadAverage() string {
	if f := strings.Fields(readFile("/proc/loadavg")); len(f) > 0 {
		return f[0]
	}
	return ""
}

// virtualization describes the machine: "VM (hypervisor flag)" or "bare
// metal (no hypervisor flag)", with systemd-detect-virt's answers.
func virtualization() string {
	v := "bare metal (no hypervisor flag)"
	if strings.Contains(readFile("/proc/cpuinfo"), " hypervisor") {
		v = "VM (CPU hypervisor flag)"
	}
	var what []string
	for _, arg := range []string{"--vm", "--container"} {
		if out := firstLine(output("systemd-detect-virt", arg)); out != "?" && out != "none" && out != "" {
			what = append(what, out)
		}
	}
	if len(what) > 0 {
		v += ", systemd-detect-virt: " + strings.Join(what, ", ")
	}
	return v
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func output(name string, args ...string) string {
	b, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "?"
	}
	return string(b)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
