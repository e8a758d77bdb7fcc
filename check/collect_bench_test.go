package check

import (
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/ipcscript/ipcscript/trace"
)

// BenchmarkCollect is the supervisor's side of a traced run, per event:
// trace.Collector.Merge (decoding every record of the processes' buffers,
// sorting), writing the .jsonl, and New (the checks' view, made for every
// recorded run), over the records of a mailbox 1→1 run (a producer's
// sends, a consumer's receives, as trace.Recorder.EmitMsg writes them).
// b.N is the number of messages (two events each). Under callgrind (with
// GODEBUG=asyncpreemptoff=1) at one -test.benchtime=Nx, the difference
// the environment's CHECK_COLLECT_STAGES makes (0: recording only, 1:
// and the merge, 2: and the write, 3: and New) is each stage's count.
func BenchmarkCollect(b *testing.B) {
	procs := []trace.Proc{{Name: "producer"}, {Name: "consumer"}, {Name: "coord"}}
	objs := []trace.Object{{Kind: "mailbox", Name: "box", Decl: "tput.lua:28"}}
	c, err := trace.NewCollector("tput.lua", procs, objs, len(objs), 256<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for p := range procs {
		c.Spawned(p)
	}
	rp, rc := trace.NewRecorder(0, 3, c.Buffer(0), c.Board), trace.NewRecorder(1, 3, c.Buffer(1), c.Board)
	rp.Resume()
	rc.Resume()
	now := trace.Now()
	var body []byte
	for i := 0; i < b.N; i++ {
		now += 1500
		rp.Tick()
		body = rp.AppendClock(body[:0])
		rp.EmitMsg(&trace.MsgEvent{Op: trace.OpSend, Kind: "mailbox", Object: "box", Where: "tput.lua:47", Time: now, End: now + 300,
			Msg: trace.MsgID{Src: 0, Seq: rp.Seq()}, HasMsg: true, Len: 64})
		cause, _, _ := rc.AcquireMessage(body)
		rc.Tick()
		rc.EmitMsg(&trace.MsgEvent{Op: trace.OpReceive, Kind: "mailbox", Object: "box", Where: "tput.lua:57", Time: now + 200, End: now + 700,
			Msg: trace.MsgID{Src: cause.P, Seq: cause.Seq}, HasMsg: true, Cause: cause, HasCause: true, Len: 64, Peer: "producer"})
	}
	b.ResetTimer()
	stages := 3 // CHECK_COLLECT_STAGES=0..2: stop before the merge, the write, New
	if v, err := strconv.Atoi(os.Getenv("CHECK_COLLECT_STAGES")); err == nil {
		stages = v
	}
	if stages < 1 {
		return
	}
	t, err := c.Merge()
	if err != nil {
		b.Fatal(err)
	}
	if stages < 2 {
		return
	}
	if err := trace.WriteFormat(io.Discard, ".jsonl", t, trace.Options{}); err != nil {
		b.Fatal(err)
	}
	if stages < 3 {
		return
	}
	New(t)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/event")
}
