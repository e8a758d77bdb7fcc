package runtime

import (
	"bytes"
	"os"
	"strconv"
)

// runnable reports whether any thread of process pid is running, waiting
// for a CPU (state R) or in an uninterruptible wait (D), as
// /proc/PID/task/TID/stat says. A process asleep in an IPC wait has every
// thread in S (a futex or poll sleep); one that was woken and has not run
// yet has a thread in R. A process that is gone is not runnable.
func runnable(pid int) bool {
	if pid <= 0 {
		return false
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	tids, _ := f.Readdirnames(-1)
	f.Close()
	for _, tid := range tids {
		b, err := os.ReadFile(dir + "/" + tid + "/stat")
		if err != nil {
			continue // the thread ended
		}
		// "tid (comm) S ...": comm may hold spaces and parentheses; the
		// state follows the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			continue
		}
		switch b[i+2] {
		case 'R', 'D':
			return true
		}
	}
	return false
}
