package bindings

import (
	"testing"

	"github.com/ipcscript/ipcscript/trace"
)

// BenchmarkReceiveIntoTraced is BenchmarkReceiveInto with the process
// recording (a traced run): the CPU cost tracing adds to a send and a
// receive, in one process, so that a loaded machine's scheduling does not
// hide it. Compare the two in one run, interleaved:
//
//	go test ./bindings -run '^$' -bench 'ReceiveInto(Traced)?$' -count 8 -benchtime 200000x
func BenchmarkReceiveIntoTraced(b *testing.B) {
	L, env := parentState(b, `ipc = require("ipc"); box = ipc.mailbox("m")`)
	col, err := trace.NewCollector("bench.lua", []trace.Proc{{Name: "main"}}, nil, len(env.Decls), 256<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer col.Close()
	env.Trace = trace.NewRecorder(0, 1, col.Buffer(0), col.Board)
	defer func() { env.Trace = nil }()
	runBenchLoop(b, L, receiveIntoLoop)
	b.StopTimer()
	if n, _ := col.Buffer(0).Stats(); n > 0 {
		b.ReportMetric(float64(col.Buffer(0).Bytes())/float64(n), "B/event")
	}
	if n, dropped := col.Buffer(0).Stats(); dropped > 0 {
		b.Logf("%d events recorded, %d dropped: the figure is too low", n, dropped)
	}
}
