// Package luaload compiles Lua source for ipcscript's Lua states: gopher-lua's
// parser and compiler, with one defect of its compiler mended before code
// generation.
//
// The defect (gopher-lua v1.1.2, yuin/gopher-lua#440, also #315): a
// multiple assignment evaluates each value straight into the register of a
// local it assigns, before the values after it are read. So
//
//	x, y = y, x
//
// leaves both equal to the old y, `a, b = a + 1, a + b` reads the new a,
// and `f, t.k = f, d` can store the wrong value. Lua says a multiple
// assignment evaluates every value first and only then assigns; the swap is
// everyday Lua (a philosopher taking the forks in the other order, a
// cursor advancing).
//
// The mend rewrites each assignment with more than one target, in every
// block and every function of the chunk, into
//
//	do
//	  local o1, k1 = t, k          -- the table and key of each t[k] target
//	  local v1, ..., vn = e1, ... em   -- every value, as a local statement
//	  ... x = vi; o1[k1] = vj ...  -- one target at a time, last first
//	end
//
// A local statement puts its values in fresh registers, so nothing is
// overwritten before it is read; it adjusts the values to the names as an
// assignment does (a call in the last place gives as many as needed,
// missing ones are nil, extra values are still evaluated); the table and
// key of each indexed target are evaluated before the values, so `i, a[i]
// = i + 1, 20` sets a[3] when i is 3, as the manual says; and the targets
// are assigned last first, as gopher-lua and PUC Lua do. The temporaries'
// names cannot be written in Lua, so they shadow nothing. Line numbers
// stay those of the original statement.
//
// Load replaces LState.Load; Open replaces the Lua functions that compile
// (load, loadstring, loadfile, dofile and require's loader for Lua files)
// with ones that go through Load.
package luaload

import (
	"fmt"
	"io"
	"os"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// Compile parses and compiles a chunk, mending multiple assignments.
func Compile(r io.Reader, name string) (*lua.FunctionProto, error) {
	chunk, err := parse.Parse(r, name)
	if err != nil {
		return nil, err
	}
	mendBlock(chunk)
	return lua.Compile(chunk, name)
}

// Load is LState.Load through Compile: the same function, the same errors.
func Load(L *lua.LState, r io.Reader, name string) (*lua.LFunction, error) {
	proto, err := Compile(r, name)
	if err != nil {
		return nil, &lua.ApiError{Type: lua.ApiErrorSyntax, Object: lua.LString(err.Error()), Cause: err}
	}
	return L.NewFunctionFromProto(proto), nil
}

// Open replaces load, loadstring, loadfile, dofile and package.loaders[2]
// (require's search of package.path) with versions that compile through
// Load. Their behaviour is gopher-lua's otherwise, messages included. It
// replaces only what is there: call it after the base and package
// libraries are open and before anything (--sandbox) wraps or removes
// them.
func Open(L *lua.LState) {
	set := func(name string, fn lua.LGFunction) {
		if _, ok := L.GetGlobal(name).(*lua.LFunction); ok {
			L.SetGlobal(name, L.NewFunction(fn))
		}
	}
	set("loadstring", func(L *lua.LState) int {
		return loadAux(L, strings.NewReader(L.CheckString(1)), L.OptString(2, "<string>"))
	})
	set("load", func(L *lua.LState) int {
		fn := L.CheckFunction(1)
		chunkname := L.OptString(2, "?")
		var parts []string
		for {
			L.Push(fn)
			L.Call(0, 1)
			ret := L.Get(-1)
			L.Pop(1)
			if ret == lua.LNil {
				break
			}
			if !lua.LVCanConvToString(ret) {
				L.Push(lua.LNil)
				L.Push(lua.LString("reader function must return a string"))
				return 2
			}
			s := ret.String()
			if s == "" {
				break
			}
			parts = append(parts, s)
		}
		return loadAux(L, strings.NewReader(strings.Join(parts, "")), chunkname)
	})
	set("loadfile", func(L *lua.LState) int {
		if L.GetTop() < 1 {
			return loadAux(L, os.Stdin, "<stdin>")
		}
		path := L.CheckString(1)
		f, err := os.Open(path)
		if err != nil {
			L.Push(lua.LNil)
			L.Push(lua.LString(fmt.Sprintf("can not open file: %v", path)))
			return 2
		}
		defer f.Close()
		return loadAux(L, f, path)
	})
	set("dofile", func(L *lua.LState) int {
		path := L.ToString(1)
		top := L.GetTop()
		fn, err := loadFile(L, path)
		if err != nil {
			L.Push(lua.LString(err.Error()))
			L.Panic(L)
		}
		L.Push(fn)
		L.Call(0, lua.MultRet)
		return L.GetTop() - top
	})
	if pkg, ok := L.GetGlobal("package").(*lua.LTable); ok {
		OpenLoader(L, pkg)
	}
}

// OpenLoader makes require's loader of Lua files, in pkg.loaders (pkg is
// the package library's table), load them through Load. Open does it for
// the package table it finds; a state that opens package later (a child's,
// runtime/stdlib.go) calls it then.
func OpenLoader(L *lua.LState, pkg *lua.LTable) {
	if loaders, ok := pkg.RawGetString("loaders").(*lua.LTable); ok && loaders.Len() >= 2 {
		loaders.RawSetInt(2, L.NewFunction(requireLua))
	}
}

func loadAux(L *lua.LState, r io.Reader, name string) int {
	fn, err := Load(L, r, name)
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Push(fn)
	return 1
}

// loadFile is LState.LoadFile through Load.
func loadFile(L *lua.LState, path string) (*lua.LFunction, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &lua.ApiError{Type: lua.ApiErrorFile, Object: lua.LString(err.Error()), Cause: err}
	}
	defer f.Close()
	return Load(L, f, path)
}

// requireLua is gopher-lua's loader of Lua files for require (loadlib.go's
// loLoaderLua and loFindFile) through Load.
func requireLua(L *lua.LState) int {
	name := strings.ReplaceAll(L.CheckString(1), ".", string(os.PathSeparator))
	pkg, _ := L.GetGlobal("package").(*lua.LTable)
	var path lua.LString
	if pkg != nil {
		path, _ = pkg.RawGetString("path").(lua.LString)
	}
	if pkg == nil || path == "" {
		L.RaiseError("package.path must be a string")
	}
	var messages []string
	for _, pattern := range strings.Split(string(path), ";") {
		file := strings.ReplaceAll(pattern, "?", name)
		if _, err := os.Stat(file); err != nil {
			messages = append(messages, err.Error())
			continue
		}
		fn, err := loadFile(L, file)
		if err != nil {
			L.RaiseError("%s", err.Error())
		}
		L.Push(fn)
		return 1
	}
	L.Push(lua.LString(strings.Join(messages, "\n\t")))
	return 1
}

// mendBlock rewrites the multiple assignments of a block and of every
// function inside it.
func mendBlock(stmts []ast.Stmt) {
	for i, st := range stmts {
		stmts[i] = mendStmt(st)
	}
}

func mendStmt(st ast.Stmt) ast.Stmt {
	switch s := st.(type) {
	case *ast.AssignStmt:
		for _, e := range s.Lhs {
			mendExpr(e)
		}
		for _, e := range s.Rhs {
			mendExpr(e)
		}
		if len(s.Lhs) > 1 {
			return splitAssign(s)
		}
	case *ast.LocalAssignStmt:
		mendExprs(s.Exprs)
	case *ast.FuncCallStmt:
		mendExpr(s.Expr)
	case *ast.DoBlockStmt:
		mendBlock(s.Stmts)
	case *ast.WhileStmt:
		mendExpr(s.Condition)
		mendBlock(s.Stmts)
	case *ast.RepeatStmt:
		mendBlock(s.Stmts)
		mendExpr(s.Condition)
	case *ast.IfStmt:
		mendExpr(s.Condition)
		mendBlock(s.Then)
		mendBlock(s.Else)
	case *ast.NumberForStmt:
		mendExpr(s.Init)
		mendExpr(s.Limit)
		mendExpr(s.Step)
		mendBlock(s.Stmts)
	case *ast.GenericForStmt:
		mendExprs(s.Exprs)
		mendBlock(s.Stmts)
	case *ast.FuncDefStmt:
		mendExpr(s.Func)
	case *ast.ReturnStmt:
		mendExprs(s.Exprs)
	}
	return st
}

func mendExprs(es []ast.Expr) {
	for _, e := range es {
		mendExpr(e)
	}
}

// mendExpr finds the functions inside an expression.
func mendExpr(e ast.Expr) {
	switch x := e.(type) {
	case nil:
	case *ast.FunctionExpr:
		mendBlock(x.Stmts)
	case *ast.AttrGetExpr:
		mendExpr(x.Object)
		mendExpr(x.Key)
	case *ast.TableExpr:
		for _, f := range x.Fields {
			mendExpr(f.Key)
			mendExpr(f.Value)
		}
	case *ast.FuncCallExpr:
		mendExpr(x.Func)
		mendExpr(x.Receiver)
		mendExprs(x.Args)
	case *ast.LogicalOpExpr:
		mendExpr(x.Lhs)
		mendExpr(x.Rhs)
	case *ast.RelationalOpExpr:
		mendExpr(x.Lhs)
		mendExpr(x.Rhs)
	case *ast.StringConcatOpExpr:
		mendExpr(x.Lhs)
		mendExpr(x.Rhs)
	case *ast.ArithmeticOpExpr:
		mendExpr(x.Lhs)
		mendExpr(x.Rhs)
	case *ast.UnaryMinusOpExpr:
		mendExpr(x.Expr)
	case *ast.UnaryNotOpExpr:
		mendExpr(x.Expr)
	case *ast.UnaryLenOpExpr:
		mendExpr(x.Expr)
	}
}

// splitAssign turns `t1, ..., tn = e1, ..., em` into the block described
// in the package comment.
func splitAssign(s *ast.AssignStmt) ast.Stmt {
	line, last := s.Line(), s.LastLine()
	at := func(n ast.PositionHolder) {
		n.SetLine(line)
		n.SetLastLine(last)
	}
	ident := func(name string) *ast.IdentExpr {
		id := &ast.IdentExpr{Value: name}
		at(id)
		return id
	}
	var pre *ast.LocalAssignStmt // the tables and keys of indexed targets
	targets := make([]ast.Expr, len(s.Lhs))
	for i, lhs := range s.Lhs {
		get, ok := lhs.(*ast.AttrGetExpr)
		if !ok {
			targets[i] = lhs
			continue
		}
		if pre == nil {
			pre = &ast.LocalAssignStmt{}
			at(pre)
		}
		o, k := fmt.Sprintf("(table %d)", i+1), fmt.Sprintf("(key %d)", i+1)
		pre.Names = append(pre.Names, o, k)
		pre.Exprs = append(pre.Exprs, get.Object, get.Key)
		t := &ast.AttrGetExpr{Object: ident(o), Key: ident(k)}
		t.SetLine(get.Line())
		t.SetLastLine(get.LastLine())
		targets[i] = t
	}
	values := &ast.LocalAssignStmt{Exprs: s.Rhs}
	at(values)
	for i := range s.Lhs {
		values.Names = append(values.Names, fmt.Sprintf("(value %d)", i+1))
	}
	block := &ast.DoBlockStmt{}
	at(block)
	if pre != nil {
		block.Stmts = append(block.Stmts, pre)
	}
	block.Stmts = append(block.Stmts, values)
	for i := len(targets) - 1; i >= 0; i-- {
		one := &ast.AssignStmt{Lhs: []ast.Expr{targets[i]}, Rhs: []ast.Expr{ident(values.Names[i])}}
		at(one)
		block.Stmts = append(block.Stmts, one)
	}
	return block
}
