package ipc

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the decoders: DecodeHeader,
// DecodeMessage and ReadFrame must never panic, must refuse with the
// documented errors, and whatever they accept must re-encode to exactly the
// bytes it came from. `go test` runs the seeds here and in
// testdata/fuzz/FuzzDecode; `go test -fuzz=FuzzDecode ./ipc` explores.
func FuzzDecode(f *testing.F) {
	f.Add(AppendMessage(nil, sample))
	var frames bytes.Buffer
	WriteFrame(&frames, sample)
	WriteFrame(&frames, &Message{})
	f.Add(frames.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if h, err := DecodeHeader(data); err == nil {
			if h.TypeLen > MaxTypeLen || h.BodyLen < 0 || h.Size() > MaxMessageSize {
				t.Fatalf("accepted out-of-limit header %+v", h)
			}
		} else if !errors.Is(err, ErrBadHeader) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("DecodeHeader: unexpected error %v", err)
		}

		var m Message
		if err := DecodeMessage(data, &m); err == nil {
			if again := AppendMessage(nil, &m); !bytes.Equal(again, data) {
				t.Fatalf("DecodeMessage accepted %x, re-encodes as %x", data, again)
			}
		}

		r := bytes.NewReader(data)
		for {
			before := len(data) - r.Len()
			err := ReadFrame(r, &m)
			if err == ErrEOF || err == io.ErrUnexpectedEOF || errors.Is(err, ErrBadHeader) || errors.Is(err, ErrTooLarge) {
				break
			}
			if err != nil {
				t.Fatalf("ReadFrame: unexpected error %v", err)
			}
			var w bytes.Buffer
			if err := WriteFrame(&w, &m); err != nil {
				t.Fatalf("WriteFrame of a frame just read: %v", err)
			}
			if consumed := data[before : len(data)-r.Len()]; !bytes.Equal(w.Bytes(), consumed) {
				t.Fatalf("frame %x re-encodes as %x", consumed, w.Bytes())
			}
		}
	})
}
