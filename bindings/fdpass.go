package bindings

import (
	lua "github.com/yuin/gopher-lua"
)

// messengerOf returns the Lua state's messenger (the codec and the inboxes).
func messengerOf(L *lua.LState) *messenger {
	reg := L.Get(lua.RegistryIndex).(*lua.LTable)
	ud, ok := reg.RawGetString(messengerKey).(*lua.LUserData)
	if !ok {
		L.RaiseError("message passing is not set up")
	}
	return ud.Value.(*messenger)
}

// encodeFiles encodes v as a message body (a copy the caller keeps).
func (e *Env) encodeFiles(L *lua.LState, what string, v lua.LValue) ([]byte, error) {
	m := messengerOf(L)
	b, err := m.enc.encode(v, 0)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

// decodeFiles decodes a body encodeFiles made.
func (e *Env) decodeFiles(L *lua.LState, b []byte) (lua.LValue, error) {
	return messengerOf(L).dec.decode(L, b)
}
