// Package ipc holds plain Go IPC objects over real Linux kernel mechanisms:
// pipes, FIFOs, message queues in shared memory (mailboxes and direct-link
// inboxes), POSIX message queues, semaphores, mutexes, shared memory and
// sockets, plus the message header and wire format. It has no Lua in it and
// can be used by any Go program.
//
// Conventions every object kind follows:
//
//   - An object is created in one process (New...) and opened in another
//     from inherited descriptors (Open...). Descriptors are close-on-exec and
//     handed to children on purpose through exec.Cmd.ExtraFiles.
//   - Blocking calls take a WaitOpts: NonBlocking=true returns at once
//     (ErrEmpty / ErrFull), a zero Timeout waits forever. Expected outcomes are the sentinel errors in
//     errors.go (ErrTimeout, ErrEmpty, ErrFull, ErrClosed, ErrEOF); anything
//     else is misuse or a system failure, wrapped with the object's name.
//   - A process that blocks records what it waits on in its WaitStatus slot
//     (status.go) so a supervisor can see it without a round trip.
//   - Every byte stream (pipe end, FIFO, socket connection) is a Stream
//     (stream.go): a blocking descriptor read and written with plain
//     read(2)/write(2), timeouts and NonBlocking through Poll (poll_linux.go,
//     the one poll(2) loop) and calls that do not wait; its file status
//     flags are left alone when the descriptor is shared.
//   - Close is local: it unmaps or closes this process's view, and the
//     object lives on in every other process that holds it. What acts on
//     the object for every process is named so: Queue.Shutdown (a
//     mailbox's close()), Mqueue.Unlink.
package ipc
