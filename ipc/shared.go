package ipc

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// Shared is a set of named numeric variables laid out on a Shm: the
// script names fields and their types, and reads, writes and atomically
// updates them by name instead of by byte offset. The bytes stay an
// ordinary Shm (readable with Read and Get at the offsets Fields reports).
//
// Layout: fields sorted by name, each at the next offset that is a
// multiple of its type's size (so every field supports the atomic
// operations), arrays as consecutive elements. The order does not depend
// on how the script wrote its table (Lua tables have no order), so every
// process computes the same layout.
type Shared struct {
	*Shm
	fields []SharedField
	byName map[string]int
}

// SharedField is one variable: a scalar (Count 0) or an array of Count
// elements of Type.
type SharedField struct {
	Name   string
	Type   NumType
	Count  int
	Offset int // placed by LayoutShared
}

// MaxSharedCount bounds one array field.
const MaxSharedCount = 1 << 24

// LayoutShared places the fields and returns them sorted by name, with
// the total size in bytes.
func LayoutShared(fields []SharedField) ([]SharedField, int, error) {
	if len(fields) == 0 {
		return nil, 0, fmt.Errorf("no fields")
	}
	out := append([]SharedField(nil), fields...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	off := 0
	for i := range out {
		f := &out[i]
		switch {
		case f.Name == "":
			return nil, 0, fmt.Errorf("a field name must not be empty")
		case i > 0 && out[i-1].Name == f.Name:
			return nil, 0, fmt.Errorf("field %q appears twice", f.Name)
		case f.Type.Size() == 0:
			return nil, 0, fmt.Errorf("field %q: unknown number type", f.Name)
		case f.Count < 0 || f.Count > MaxSharedCount:
			return nil, 0, fmt.Errorf("field %q: array length %d must be between 1 and %d", f.Name, f.Count, MaxSharedCount)
		}
		n := f.Type.Size()
		off = roundUp(off, n)
		f.Offset = off
		off += n * max(f.Count, 1)
	}
	return out, off, nil
}

// NewShared creates the variables, all zero. name is the script's name.
func NewShared(name string, fields []SharedField) (*Shared, error) {
	laid, size, err := LayoutShared(fields)
	if err != nil {
		return nil, fmt.Errorf("shared %q: %v", name, err)
	}
	m, err := NewShm(name, size)
	if err != nil {
		return nil, err
	}
	return newShared(m, laid), nil
}

// OpenShared maps variables created by NewShared from the inherited memfd;
// fields must be the same declaration.
func OpenShared(f *os.File, name string, fields []SharedField) (*Shared, error) {
	laid, size, err := LayoutShared(fields)
	if err != nil {
		return nil, fmt.Errorf("shared %q: %v", name, err)
	}
	m, err := OpenShm(f, name)
	if err != nil {
		return nil, err
	}
	if m.Size() != size {
		m.Close()
		return nil, fmt.Errorf("shared %q: open: the memory holds %d bytes, the fields need %d", name, m.Size(), size)
	}
	return newShared(m, laid), nil
}

func newShared(m *Shm, laid []SharedField) *Shared {
	m.obj.kind = "shared"
	s := &Shared{Shm: m, fields: laid, byName: map[string]int{}}
	for i, f := range laid {
		s.byName[f.Name] = i
	}
	return s
}

// Fields are the variables in layout order, with their offsets.
func (s *Shared) Fields() []SharedField { return s.fields }

// Field looks a variable up by name.
func (s *Shared) Field(name string) (SharedField, bool) {
	i, ok := s.byName[name]
	if !ok {
		return SharedField{}, false
	}
	return s.fields[i], true
}

// Describe is the layout as "name:type@offset" items, for errors and for
// a declaration's parameters.
func DescribeShared(fields []SharedField) string {
	var b strings.Builder
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%s", f.Name, f.Type)
		if f.Count > 0 {
			fmt.Fprintf(&b, "[%d]", f.Count)
		}
	}
	return b.String()
}

// Locate returns the type and byte offset of field name, element index
// (0-based) for an array; index is ignored (pass 0) for a scalar.
func (s *Shared) Locate(name string, index int) (NumType, int, error) {
	i, ok := s.byName[name]
	if !ok {
		return 0, 0, s.obj.errorf("field", "no field %q (fields: %s)", name, DescribeShared(s.fields))
	}
	f := s.fields[i]
	if f.Count == 0 {
		return f.Type, f.Offset, nil
	}
	if index < 0 || index >= f.Count {
		return 0, 0, s.obj.errorf("field", "index %d is outside %s[1..%d]", index+1, name, f.Count)
	}
	return f.Type, f.Offset + index*f.Type.Size(), nil
}
