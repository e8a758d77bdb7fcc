package runtime

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"

	lua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/internal/luaload"
)

// The script as the children receive it: one sealed memfd per run
// (Manifest.Source), shared by all of them, holding
//
//	scriptMagic | uvarint n | n bytes: the compiled chunk | the source
//
// The chunk is the parent's compiled prototype (luaload.EncodeProto), so a
// child does not lex, parse and compile the script again (322k
// instructions and 17 page faults of a child's start); n is 0 when the
// parent could not encode it. A child that cannot decode the chunk
// compiles the source, as before: the result is the same function.
const scriptMagic = "\x1bipcsc1\n"

// scriptImage is what the supervisor writes to the source memfd.
func scriptImage(src string, proto *lua.FunctionProto) []byte {
	var chunk []byte
	if proto != nil {
		chunk, _ = luaload.EncodeProto(make([]byte, 0, 4*len(src)+64), proto) // nil on error: the children compile
	}
	b := make([]byte, 0, len(scriptMagic)+binary.MaxVarintLen64+len(chunk)+len(src))
	b = append(b, scriptMagic...)
	b = binary.AppendUvarint(b, uint64(len(chunk)))
	b = append(b, chunk...)
	return append(b, src...)
}

// readScriptImage is the image in f, the run's sealed source memfd,
// mapped read-only rather than copied: its pages are already in memory
// (the supervisor wrote them), so mapping them costs a page fault or two,
// where reading them into a buffer grown from 512 bytes cost a child ~6
// (one child of a 64-process launch: 5 preads; perf page-faults). The
// mapping stays for the life of the process: the decoded chunk's strings
// are parts of it (luaload.DecodeProto), and the seals keep it from
// changing (prepare). Where it cannot be mapped it is read.
func readScriptImage(f *os.File) ([]byte, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err == nil && st.Size > 0 && st.Size <= 1<<30 {
		if b, err := unix.Mmap(int(f.Fd()), 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED); err == nil {
			return b, nil
		}
	}
	return io.ReadAll(io.NewSectionReader(f, 0, 1<<30))
}

// loadScriptImage is a child's luaload.Load of the script: the parent's
// compiled chunk when it decodes (and names the script), else the source
// compiled here.
func loadScriptImage(L *lua.LState, image []byte, name string) (*lua.LFunction, error) {
	if !bytes.HasPrefix(image, []byte(scriptMagic)) {
		return nil, errors.New("the script's memfd is not a script image")
	}
	rest := image[len(scriptMagic):]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)-k) {
		return nil, errors.New("the script's memfd is not a script image")
	}
	chunk, src := rest[k:k+int(n)], rest[k+int(n):]
	if n > 0 {
		if p, err := luaload.DecodeProto(chunk); err == nil && p.SourceName == name {
			return L.NewFunctionFromProto(p), nil
		}
	}
	return luaload.Load(L, bytes.NewReader(src), name)
}
