package runtime

import (
	"bytes"
	"encoding/binary"
	"errors"

	lua "github.com/yuin/gopher-lua"

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
