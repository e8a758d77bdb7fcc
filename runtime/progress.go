package runtime

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipcscript/ipcscript/ipc"
)

// The progress line (Options.Progress): while a run lasts longer than a
// second, one line at the bottom of the terminal says how many processes
// run, are blocked or have exited, and how many IPC operations they have
// completed. It is redrawn in place (\r, erase to the end of the line) and
// erased before any other line is written to the terminal, so the
// processes' output scrolls above it and never mixes with it.

const (
	progressAfter = time.Second            // no line for runs shorter than this
	progressEvery = 200 * time.Millisecond // redraw at most this often
	eraseLine     = "\r\x1b[K"
)

// statusLine is the line and the lock every writer to the terminal takes.
type statusLine struct {
	mu      sync.Mutex
	w       io.Writer // the terminal (Options.Stderr)
	color   bool      // dim the line (not with NO_COLOR)
	text    string
	shown   bool // the line is on the screen
	partial bool // the last output ended without a newline: do not draw
	drawn   time.Time
}

// around writes p to w with the status line out of the way: erased before,
// drawn again after (unless p leaves a partial line for the next write).
func (s *statusLine) around(w io.Writer, p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown {
		io.WriteString(s.w, eraseLine)
		s.shown = false
	}
	n, err := w.Write(p)
	if len(p) > 0 {
		s.partial = p[len(p)-1] != '\n'
	}
	s.drawLocked()
	return n, err
}

func (s *statusLine) drawLocked() {
	if s.text == "" || s.partial {
		return
	}
	line := eraseLine + s.text
	if s.color {
		line = eraseLine + "\x1b[2m" + s.text + "\x1b[0m"
	}
	io.WriteString(s.w, line)
	s.shown = true
}

// set replaces the text and draws it.
func (s *statusLine) set(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.text = text
	s.drawn = time.Now()
	s.drawLocked()
}

// clear erases the line for good (the end of the run).
func (s *statusLine) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown {
		io.WriteString(s.w, eraseLine)
	}
	s.text, s.shown = "", false
}

// progress redraws the status line from the status table: called on every
// tick of the supervisor's loop.
func (sup *supervisor) progress(start time.Time) {
	st := sup.s.status
	if st == nil || sup.status == nil || time.Since(start) < progressAfter || time.Since(st.drawn) < progressEvery {
		return
	}
	var running, blocked, sleeping, exited int
	var ops uint64
	for _, c := range sup.children {
		if c.state != nil || c.err != nil {
			exited++
		} else {
			switch loadU32(&sup.status.Slot(c.p.Slot).State) {
			case ipc.StateBlocked:
				blocked++
			case ipc.StateSleeping:
				sleeping++
			default:
				running++
			}
		}
		if c.p.Pid != 0 {
			ops += atomic.LoadUint64(&sup.status.Slot(c.p.Slot).Progress)
		}
	}
	parts := []string{fmt.Sprintf("%d running", running)}
	if blocked > 0 {
		parts = append(parts, fmt.Sprintf("%d blocked", blocked))
	}
	if sleeping > 0 {
		parts = append(parts, fmt.Sprintf("%d sleeping", sleeping))
	}
	parts = append(parts, fmt.Sprintf("%d exited", exited))
	text := fmt.Sprintf("ipcscript %s %.0fs · %s · %d ops",
		filepath.Base(sup.s.name), time.Since(start).Seconds(), strings.Join(parts, ", "), ops)
	// A line longer than the terminal would wrap, and \r could not erase
	// the part that wrapped.
	width := sup.s.opts.ProgressWidth
	if width <= 0 {
		width = 80
	}
	if r := []rune(text); len(r) > width-1 {
		text = string(r[:width-1])
	}
	st.set(text)
}
