package trace

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func sample() *Trace {
	return &Trace{
		Version: Version,
		Script:  "x.lua",
		Procs:   []Proc{{Name: "a", Group: "a", Pid: 10}, {Name: "b", Group: "b", Pid: 11}},
		Objects: []Object{{Kind: "mailbox", Name: "box", Decl: "x.lua:2"}},
		Events: []Event{
			{P: 0, Proc: "a", Seq: 1, Op: OpSend, Kind: "mailbox", Object: "box", Decl: "x.lua:2", Where: "x.lua:5", Time: 100,
				Msg: &MsgID{Src: 0, Seq: 1}, Type: "job", Len: 3, VC: VC{1, 0}},
			{P: 1, Proc: "b", Seq: 1, Op: OpReceive, Kind: "mailbox", Object: "box", Where: "x.lua:9", Time: 90, End: 120,
				Msg: &MsgID{Src: 0, Seq: 1}, Cause: &Ref{0, 1}, VC: VC{1, 1}},
			{P: 1, Proc: "b", Seq: 2, Op: OpMark, Label: "odd \"quotes\" <b> \x01 \u2028 \xff", Time: 130,
				Fields: map[string]any{"n": 3.0, "s": "x"}, VC: VC{1, 2}},
			{P: 0, Proc: "a", Seq: 2, Op: OpMark, Label: "alone", Time: 131, VC: VC{2, 0}},
		},
	}
}

func TestJSONLRoundTrip(t *testing.T) {
	tr := sample()
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, tr); err != nil {
		t.Fatal(err)
	}
	// every line is valid JSON on its own
	for i, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		if !json.Valid(l) {
			t.Fatalf("line %d is not JSON: %s", i+1, l)
		}
	}
	got, err := ReadJSONL(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := *tr
	want.Events = append([]Event(nil), tr.Events...)
	want.Events[2].Label = "odd \"quotes\" <b> \x01 \u2028 \ufffd"
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, &want)
	}
}

func TestHappensBefore(t *testing.T) {
	tr := sample()
	e := tr.Events
	if !HappensBefore(&e[0], &e[1]) || HappensBefore(&e[1], &e[0]) {
		t.Error("send must happen before its receive")
	}
	if !HappensBefore(&e[0], &e[2]) {
		t.Error("send must happen before what follows its receive")
	}
	if !Concurrent(&e[3], &e[2]) || !Concurrent(&e[3], &e[1]) {
		t.Error("a's second mark is concurrent with b's events")
	}
	if HappensBefore(&e[0], &e[0]) || Concurrent(&e[0], &e[0]) {
		t.Error("an event neither precedes nor is concurrent with itself")
	}
	if edges := tr.Edges(); len(edges) != 1 || edges[0] != (Edge{0, 1}) {
		t.Errorf("edges = %v, want [{0 1}]", edges)
	}
}
