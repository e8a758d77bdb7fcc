package runtime

import (
	"strconv"
	"strings"
)

// The parent/child protocol, one child shown. This is the one copy of the
// diagram; docs/ARCHITECTURE.md points here.
//
//	supervisor (parent)                          child (same binary, re-executed)
//	-------------------                          --------------------------------
//	run script: declarations create objects
//	ipc.run(): status table, script memfd; mark inherited fds close-on-exec
//	for each process (launch.go):
//	  socketpair(SEQPACKET) ctl ---- fd 3 -----> ctl: parent check (EOF = parent died)
//	  memfd status table ----------- fd 4 -----> its slot: state/op/object, no syscalls
//	  memfd script source ---------- fd 5 -----> runs the same script
//	  declared objects' fds -------- fd 6.. ---> declarations bind to them in order
//	  env IPCSCRIPT_CHILD = manifest ----------> marks fds 3.. close-on-exec
//	    (quoted lines, not JSON: identity,
//	     declarations, fd numbers; see the
//	     manifest's Encode)
//	  stdout/stderr pipes <--------------------- output, prefixed "[name] " by the parent
//	                                             ipc.run(): body(self) runs
//	  ctl <------------------------------------- requests, any number (ctl.go): `req spawn`,
//	  ctl -------------------------------------> `req proc`, `req put`/`req take`; one reply
//	                                             each, descriptors in SCM_RIGHTS
//	  ctl <------------------------------------- result, once: lines `error "<quoted>"`,
//	                                             `failed "<quoted>"`, or `ok`
//	  wait4 <----------------------------------- exit status
//	on each exit: repair locks the dead held, release peers blocked on it
//
// Each child leads a process group of its own; stopping sends SIGTERM to
// each group, waits Options.Grace, then SIGKILL.
const envChild = "IPCSCRIPT_CHILD"

// childResult is the one message a child sends on its control socket:
// lines `error "<quoted>"`, `traceback "<quoted>"` and `failed "<quoted>"`, or `ok` (not JSON, for
// the reason the manifest is not).
type childResult struct {
	Error     string
	Traceback string // the Lua stack traceback of Error
	Failed    []string
}

func (r childResult) encode() []byte {
	var b []byte
	if r.Error != "" {
		b = append(b, "error "...)
		b = strconv.AppendQuote(b, r.Error)
		b = append(b, '\n')
	}
	if r.Traceback != "" {
		b = append(b, "traceback "...)
		b = strconv.AppendQuote(b, r.Traceback)
		b = append(b, '\n')
	}
	for _, f := range r.Failed {
		b = append(b, "failed "...)
		b = strconv.AppendQuote(b, f)
		b = append(b, '\n')
	}
	if b == nil {
		b = []byte("ok\n")
	}
	return b
}

func decodeResult(b []byte) childResult {
	var r childResult
	for _, line := range strings.Split(string(b), "\n") {
		tag, q, _ := strings.Cut(line, " ")
		v, err := strconv.Unquote(q)
		if err != nil {
			continue
		}
		switch tag {
		case "error":
			r.Error = v
		case "traceback":
			r.Traceback = v
		case "failed":
			r.Failed = append(r.Failed, v)
		}
	}
	return r
}
