package trace

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Formats, chosen by a file's extension.
var Formats = []string{".jsonl", ".json", ".shiviz", ".mmd", ".html"}

// FormatOf returns the format of path (its extension) or an error naming
// the ones there are.
func FormatOf(path string) (string, error) {
	ext := strings.ToLower(filepath.Ext(path))
	for _, f := range Formats {
		if f == ext {
			return f, nil
		}
	}
	return "", fmt.Errorf("trace %q: unknown format %q; the extension chooses it: %s", path, ext, strings.Join(Formats, " "))
}

// Options tune the views.
type Options struct {
	Limit int // .mmd: at most this many events (first and last halves); 0 = default 2000
}

// DefaultMermaidLimit is how many events a .mmd shows by default.
const DefaultMermaidLimit = 2000

// WriteFormat writes t in format (an extension from Formats).
func WriteFormat(w io.Writer, format string, t *Trace, o Options) error {
	switch format {
	case ".jsonl":
		return WriteJSONL(w, t)
	case ".json":
		return WriteChrome(w, t)
	case ".shiviz":
		return WriteShiviz(w, t)
	case ".mmd":
		limit := o.Limit
		if limit == 0 {
			limit = DefaultMermaidLimit
		}
		return WriteMermaid(w, t, limit)
	case ".html":
		return WriteHTML(w, t)
	}
	return fmt.Errorf("trace: unknown format %q", format)
}

// WriteFile writes t to path in the format its extension names.
func WriteFile(path string, t *Trace, o Options) error {
	format, err := FormatOf(path)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteFormat(f, format, t, o); err != nil {
		f.Close()
		return fmt.Errorf("trace %q: %w", path, err)
	}
	return f.Close()
}

// ReadFile reads a trace in the canonical .jsonl form.
func ReadFile(path string) (*Trace, error) {
	if ext := strings.ToLower(filepath.Ext(path)); ext != ".jsonl" {
		return nil, fmt.Errorf("trace %q: only the canonical .jsonl form can be read back (the other views are derived from it)", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := ReadJSONL(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Convert reads in (a .jsonl trace) and writes out in the format of its
// extension.
func Convert(in, out string, o Options) error {
	t, err := ReadFile(in)
	if err != nil {
		return err
	}
	return WriteFile(out, t, o)
}
