// Package trace records what the processes of a run did to each other and
// shows it.
//
// Every IPC operation of a traced run becomes an Event: which process did
// it (P, Proc), its per-process sequence number (Seq, from 1), the
// operation (Op), the object (Kind, Object, Decl), the script line (Where),
// CLOCK_MONOTONIC times (Time, and End for an interval such as a blocking
// wait or a span), its outcome, and a vector clock (VC).
//
// # Vector clocks
//
// VC is indexed by process index (the position of the process in
// Trace.Procs, declaration order). Every event of process p ticks VC[p], so
// VC[p] == Seq for each event. A send carries its clock to the receive
// that takes the message; a semaphore post, a mutex unlock, a pipe, FIFO or
// socket write leave theirs where the matching wait, lock or read picks it
// up; the receiving event's clock is the component-wise maximum of both,
// ticked. Event.Cause names the event whose clock was picked up (the edge's
// source). For semaphores and mutexes the clock left is the join of all
// earlier posts or unlocks (release/acquire semantics on the object).
//
// Event a happened before event b exactly when HappensBefore(a, b):
// a.VC[a.P] <= b.VC[a.P] and a is not b. Two events are concurrent when
// neither happened before the other.
//
// # The API others build on
//
//   - Event, VC, Trace, Proc, Object: the data; stable (schema Version).
//   - HappensBefore, Concurrent, VC.Leq, VC.Merge: the order.
//   - ReadJSONL / WriteJSONL: the canonical form, one JSON object a line.
//   - Read(path) / Write(path): any view chosen by extension.
//
// The schema of the .jsonl form is documented in docs/TRACING.md; changes
// that are not additions bump Version.
package trace
