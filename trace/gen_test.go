package trace

import (
	"math/rand"
	"os"
	"strconv"
	"testing"
)

// go test -run TestGenSample ./trace with GEN_OUT=/path.html GEN_N=events
func TestGenSample(t *testing.T) {
	out := os.Getenv("GEN_OUT")
	if out == "" {
		t.Skip()
	}
	n, _ := strconv.Atoi(os.Getenv("GEN_N"))
	tr := synth(3, n, 1)
	if err := WriteFile(out, tr, Options{}); err != nil {
		t.Fatal(err)
	}
}

func synth(np, n int, seed int64) *Trace {
	rng := rand.New(rand.NewSource(seed))
	tr := &Trace{Version: Version, Script: "synthetic.lua"}
	for i := 0; i < np; i++ {
		tr.Procs = append(tr.Procs, Proc{Name: "p" + strconv.Itoa(i)})
	}
	tr.Objects = []Object{{Kind: "mailbox", Name: "box", Decl: "s.lua:1"}, {Kind: "semaphore", Name: "s", Decl: "s.lua:2"}}
	vcs := make([]VC, np)
	for i := range vcs {
		vcs[i] = make(VC, np)
	}
	type pend struct {
		ref Ref
		vc  VC
		t   int64
	}
	var inflight []pend
	now := int64(1000)
	for k := 0; k < n; k++ {
		p := rng.Intn(np)
		now += int64(rng.Intn(5000))
		vcs[p][p]++
		e := Event{P: p, Proc: tr.Procs[p].Name, Seq: vcs[p][p], Time: now}
		if len(inflight) > 0 && rng.Intn(2) == 0 {
			m := inflight[0]
			if m.ref.P != p {
				inflight = inflight[1:]
				vcs[p] = vcs[p].Merge(m.vc)
				e.Op, e.Kind, e.Object, e.Cause = OpReceive, "mailbox", "box", &Ref{m.ref.P, m.ref.Seq}
				e.Msg = &MsgID{m.ref.P, m.ref.Seq}
				e.Time = now - int64(rng.Intn(20000))
				if e.Time < m.t {
					e.Time = m.t
				}
				e.End = now
			}
		}
		if e.Op == "" {
			if rng.Intn(3) == 0 {
				e.Op, e.Label = OpMark, "step"
			} else {
				e.Op, e.Kind, e.Object, e.Where = OpSend, "mailbox", "box", "s.lua:9"
				inflight = append(inflight, pend{Ref{p, e.Seq}, vcs[p].Clone(), now})
			}
		}
		e.VC = vcs[p].Clone()
		tr.Events = append(tr.Events, e)
	}
	Sort(tr.Events)
	return tr
}
