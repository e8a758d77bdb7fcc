package runtime

import (
	"bufio"
	"bytes"
	"io"
	"sync"
)

// lineWriter serialises whole lines from many sources onto one writer, so
// the output of concurrent processes never interleaves mid-line.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (lw *lineWriter) writeLine(prefix string, line []byte) {
	buf := make([]byte, 0, len(prefix)+len(line)+1)
	buf = append(buf, prefix...)
	buf = append(buf, line...)
	if len(line) == 0 || line[len(line)-1] != '\n' {
		buf = append(buf, '\n')
	}
	lw.mu.Lock()
	lw.w.Write(buf)
	lw.mu.Unlock()
}

// Write makes a lineWriter usable as a plain writer for whole lines.
func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(p)
}

// copyLines copies r to lw line by line, each line prefixed, until EOF. A
// last line without a newline is still written (with one).
func copyLines(lw *lineWriter, prefix string, r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			lw.writeLine(prefix, line)
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// prefixWriter prefixes every line written to it (used for the parent's
// own ipc.log lines).
type prefixWriter struct {
	lw     *lineWriter
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		p.lw.writeLine(p.prefix, p.buf[:i+1])
		p.buf = p.buf[i+1:]
	}
}
