package luaload

// A compiled chunk in bytes, so that the children of a run do not lex,
// parse and compile the script again: the parent compiles it once (Load),
// encodes the prototype (EncodeProto) and every child decodes it
// (DecodeProto) and runs it with LState.NewFunctionFromProto. Compiling
// was ~322k instructions and 17 page faults of a child's start (one child
// of a 64-process launch, callgrind); decoding is a fraction of that.
//
// The encoding carries every field of gopher-lua's FunctionProto, debug
// information included, so line numbers, error messages and tracebacks are
// those of the source. It is private to one run (parent and children are
// the same build): a version byte and the checks of the decoder refuse
// what this encoder did not write, never panic, and the caller then
// compiles the source as before.
//
// One field is unexported: stringConstants, which the compiler fills from
// Constants and the VM reads for global and field access. It is set
// through its offset, found by reflection; if this gopher-lua has no such
// field of type []string, ProtoCodecOK is false and nothing is encoded.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

const protoVersion = 1

// stringConstantsOffset is the offset of FunctionProto.stringConstants, or
// -1 if it is not a []string in this gopher-lua.
var stringConstantsOffset = sync.OnceValue(func() int {
	f, ok := reflect.TypeFor[lua.FunctionProto]().FieldByName("stringConstants")
	if !ok || f.Type != reflect.TypeFor[[]string]() || len(f.Index) != 1 {
		return -1
	}
	return int(f.Offset)
})

// ProtoCodecOK says whether prototypes can be encoded and decoded here.
func ProtoCodecOK() bool { return stringConstantsOffset() >= 0 }

func stringConstants(p *lua.FunctionProto) *[]string {
	return (*[]string)(unsafe.Add(unsafe.Pointer(p), stringConstantsOffset()))
}

// EncodeProto appends the encoding of p (and every prototype inside it) to
// buf. It fails for a constant that is not a number or a string (the
// compiler makes no other) and when ProtoCodecOK is false.
func EncodeProto(buf []byte, p *lua.FunctionProto) ([]byte, error) {
	if !ProtoCodecOK() {
		return nil, errors.New("luaload: this gopher-lua has no FunctionProto.stringConstants []string")
	}
	start := len(buf)
	buf = append(buf, protoVersion)
	buf, err := encodeProto(buf, p, 0)
	if err != nil {
		return nil, err
	}
	return binary.LittleEndian.AppendUint64(buf, protoSum(buf[start:])), nil
}

// protoSum is a checksum of an encoding (FNV-1a over 8-byte words): a
// corrupted or truncated chunk is refused before its code can run. It
// finds accidents, not forgeries; the memfd that carries the chunk is
// sealed against writes (runtime/launch.go).
func protoSum(b []byte) uint64 {
	h, n := uint64(14695981039346656037), len(b)
	for len(b) >= 8 {
		h = (h ^ binary.LittleEndian.Uint64(b)) * 1099511628211
		b = b[8:]
	}
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h ^ uint64(n)
}

const maxProtoDepth = 200 // gopher-lua's compiler nests far less deep

func encodeProto(b []byte, p *lua.FunctionProto, depth int) ([]byte, error) {
	if depth > maxProtoDepth {
		return nil, errors.New("luaload: prototypes nested too deep")
	}
	u := func(v uint64) { b = binary.AppendUvarint(b, v) }
	i := func(v int) { b = binary.AppendVarint(b, int64(v)) }
	s := func(v string) { u(uint64(len(v))); b = append(b, v...) }
	s(p.SourceName)
	i(p.LineDefined)
	i(p.LastLineDefined)
	b = append(b, p.NumUpvalues, p.NumParameters, p.IsVarArg, p.NumUsedRegisters)
	u(uint64(len(p.Code)))
	for _, c := range p.Code {
		u(uint64(c))
	}
	sc := *stringConstants(p)
	if len(sc) != len(p.Constants) {
		return nil, fmt.Errorf("luaload: %d constants but %d string constants", len(p.Constants), len(sc))
	}
	u(uint64(len(p.Constants)))
	for k, c := range p.Constants {
		switch v := c.(type) {
		case lua.LNumber:
			b = append(b, 'n')
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(v)))
			if sc[k] != "" {
				return nil, fmt.Errorf("luaload: number constant %d has string constant %q", k, sc[k])
			}
		case lua.LString:
			b = append(b, 's')
			s(string(v))
			if sc[k] != string(v) {
				return nil, fmt.Errorf("luaload: string constant %d differs from its constant", k)
			}
		default:
			return nil, fmt.Errorf("luaload: constant %d is a %s", k, c.Type())
		}
	}
	u(uint64(len(p.FunctionPrototypes)))
	for _, f := range p.FunctionPrototypes {
		var err error
		if b, err = encodeProto(b, f, depth+1); err != nil {
			return nil, err
		}
	}
	u(uint64(len(p.DbgSourcePositions)))
	for _, v := range p.DbgSourcePositions {
		i(v)
	}
	u(uint64(len(p.DbgLocals)))
	for _, l := range p.DbgLocals {
		s(l.Name)
		i(l.StartPc)
		i(l.EndPc)
	}
	u(uint64(len(p.DbgCalls)))
	for _, c := range p.DbgCalls {
		s(c.Name)
		i(c.Pc)
	}
	u(uint64(len(p.DbgUpvalues)))
	for _, v := range p.DbgUpvalues {
		s(v)
	}
	return b, nil
}

// DecodeProto decodes what EncodeProto wrote. Every string of the result
// shares the memory of data; data must not change afterwards.
func DecodeProto(data []byte) (p *lua.FunctionProto, err error) {
	if !ProtoCodecOK() {
		return nil, errors.New("luaload: this gopher-lua has no FunctionProto.stringConstants []string")
	}
	if len(data) < 9 || data[0] != protoVersion {
		return nil, errors.New("luaload: not a compiled chunk of this version")
	}
	body := data[:len(data)-8]
	if protoSum(body) != binary.LittleEndian.Uint64(data[len(body):]) {
		return nil, errors.New("luaload: compiled chunk: checksum mismatch")
	}
	d := &protoDecoder{data: body, off: 1}
	p = d.proto(0)
	if d.err == nil && d.off != len(d.data) {
		d.fail("%d bytes after the chunk", len(d.data)-d.off)
	}
	if d.err != nil {
		return nil, d.err
	}
	return p, nil
}

type protoDecoder struct {
	data []byte
	off  int
	err  error
	str  string // data as one string: the decoded strings are parts of it
}

func (d *protoDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("luaload: compiled chunk, byte %d: "+format, append([]any{d.off}, args...)...)
	}
}

func (d *protoDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	// binary.Uvarint, without its slice of the rest and its byte count:
	// a chunk is mostly varints (every instruction is one), and this was
	// half of a child's decoding of its script (~8k instructions of 35k).
	data, off := d.data, d.off
	var v uint64
	for shift := uint(0); off < len(data); shift += 7 {
		b := data[off]
		off++
		if b < 0x80 {
			if shift == 63 && b > 1 {
				break // overflows a uint64
			}
			d.off = off
			return v | uint64(b)<<shift
		}
		if shift == 63 {
			break // more than binary.MaxVarintLen64 bytes
		}
		v |= uint64(b&0x7f) << shift
	}
	d.fail("bad varint")
	return 0
}

// int reads a zigzag varint (binary.Varint's encoding).
func (d *protoDecoder) int() int {
	ux := d.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	if x != int64(int(x)) {
		d.fail("bad varint")
		return 0
	}
	return int(x)
}

// count reads a length of items each at least min bytes long.
func (d *protoDecoder) count(min int) int {
	v := d.uvarint()
	if v > uint64(len(d.data)-d.off)/uint64(min) {
		d.fail("count %d past the end", v)
		return 0
	}
	return int(v)
}

func (d *protoDecoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.data) {
		d.fail("unexpected end")
		return 0
	}
	c := d.data[d.off]
	d.off++
	return c
}

func (d *protoDecoder) string() string {
	n := d.count(1)
	if d.err != nil {
		return ""
	}
	if d.str == "" {
		d.str = unsafe.String(&d.data[0], len(d.data))
	}
	s := d.str[d.off : d.off+n]
	d.off += n
	return s
}

func (d *protoDecoder) proto(depth int) *lua.FunctionProto {
	if depth > maxProtoDepth {
		d.fail("prototypes nested too deep")
		return nil
	}
	p := &lua.FunctionProto{}
	p.SourceName = d.string()
	p.LineDefined = d.int()
	p.LastLineDefined = d.int()
	p.NumUpvalues, p.NumParameters, p.IsVarArg, p.NumUsedRegisters = d.byte(), d.byte(), d.byte(), d.byte()
	p.Code = make([]uint32, d.count(1))
	for k := range p.Code {
		v := d.uvarint()
		if v > math.MaxUint32 {
			d.fail("instruction out of range")
		}
		p.Code[k] = uint32(v)
	}
	p.Constants = make([]lua.LValue, d.count(2))
	sc := make([]string, len(p.Constants))
	var strs []lua.LString // the string constants' values, boxed in one allocation
	for k := range p.Constants {
		switch d.byte() {
		case 'n':
			if d.err == nil && len(d.data)-d.off < 8 {
				d.fail("unexpected end")
			}
			if d.err != nil {
				return nil
			}
			p.Constants[k] = lua.LNumber(math.Float64frombits(binary.LittleEndian.Uint64(d.data[d.off:])))
			d.off += 8
		case 's':
			sc[k] = d.string()
			if strs == nil {
				strs = make([]lua.LString, len(p.Constants)-k) // room for the rest
			}
			strs[0] = lua.LString(sc[k])
			p.Constants[k] = boxString(&strs[0])
			strs = strs[1:]
		default:
			d.fail("bad constant")
		}
		if d.err != nil {
			return nil
		}
	}
	*stringConstants(p) = sc
	p.FunctionPrototypes = make([]*lua.FunctionProto, d.count(1))
	for k := range p.FunctionPrototypes {
		if p.FunctionPrototypes[k] = d.proto(depth + 1); d.err != nil {
			return nil
		}
	}
	p.DbgSourcePositions = make([]int, d.count(1))
	for k := range p.DbgSourcePositions {
		p.DbgSourcePositions[k] = d.int()
	}
	p.DbgLocals = make([]*lua.DbgLocalInfo, d.count(3))
	if len(p.DbgLocals) > 0 {
		infos := make([]lua.DbgLocalInfo, len(p.DbgLocals))
		for k := range infos {
			infos[k] = lua.DbgLocalInfo{Name: d.string(), StartPc: d.int(), EndPc: d.int()}
			p.DbgLocals[k] = &infos[k]
		}
	}
	p.DbgCalls = make([]lua.DbgCall, d.count(2))
	for k := range p.DbgCalls {
		p.DbgCalls[k] = lua.DbgCall{Name: d.string(), Pc: d.int()}
	}
	p.DbgUpvalues = make([]string, d.count(1))
	for k := range p.DbgUpvalues {
		p.DbgUpvalues[k] = d.string()
	}
	if d.err != nil {
		return nil
	}
	return p
}

// boxString is *s as an LValue, the interface holding s itself: where
// lua.LValue(lua.LString(x)) copies x's header into an allocation of its
// own (runtime.convTstring), a prototype's string constants are boxed in
// one (a child's script had 17). An interface is its type's word and a
// pointer to the value; s must not change afterwards.
func boxString(s *lua.LString) lua.LValue {
	var v lua.LValue
	w := (*[2]unsafe.Pointer)(unsafe.Pointer(&v))
	w[0], w[1] = lstringType, unsafe.Pointer(s)
	return v
}

// lstringType is the type word of an LString in an LValue.
var lstringType = func() unsafe.Pointer {
	var v lua.LValue = lua.LString("x")
	return (*[2]unsafe.Pointer)(unsafe.Pointer(&v))[0]
}()
