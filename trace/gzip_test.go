package trace

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand/v2"
	"testing"
)

// The HTML page's data is inflated by the browser's DecompressionStream
// ("gzip"): what gzipWriter writes must be what compress/gzip writes, and
// read back by it.
func TestGzipWriterAsCompressGzip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 100, 70000, 1 << 20} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte('a' + r.IntN(4)) // compressible, not constant
		}
		var got, want bytes.Buffer
		zw, err := newGzipWriter(&got)
		if err != nil {
			t.Fatal(err)
		}
		// in two writes, as the bufio.Writer in front of it does
		if _, err := zw.Write(data[:n/3]); err != nil {
			t.Fatal(err)
		}
		if _, err := zw.Write(data[n/3:]); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		gw, _ := gzip.NewWriterLevel(&want, gzip.DefaultCompression)
		gw.Write(data[:n/3])
		gw.Write(data[n/3:])
		gw.Close()
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("%d bytes: gzipWriter wrote %d bytes, compress/gzip %d, not the same", n, got.Len(), want.Len())
		}
		gr, err := gzip.NewReader(&got)
		if err != nil {
			t.Fatal(err)
		}
		back, err := io.ReadAll(gr)
		if err != nil || !bytes.Equal(back, data) {
			t.Errorf("%d bytes: read back %d bytes, err %v", n, len(back), err)
		}
	}
}
