package trace

import (
	"compress/flate"
	"encoding/binary"
	"io"
	"sync"
)

// gzipWriter writes the gzip format (RFC 1952) as compress/gzip's Writer
// does at DefaultCompression, over compress/flate. compress/gzip links
// hash/crc32, whose package initialisation computes a CRC table in every
// process of a run (~13 µs of each bare start, perf record over 1000
// execs); here the table is built on the first HTML page written.
type gzipWriter struct {
	w    io.Writer
	fw   *flate.Writer
	crc  uint32
	size uint32
}

func newGzipWriter(w io.Writer) (*gzipWriter, error) {
	// ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=unknown
	if _, err := w.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}); err != nil {
		return nil, err
	}
	fw, err := flate.NewWriter(w, flate.DefaultCompression)
	if err != nil {
		return nil, err
	}
	return &gzipWriter{w: w, fw: fw, crc: ^uint32(0)}, nil
}

func (z *gzipWriter) Write(p []byte) (int, error) {
	crcOnce.Do(makeCRCTable)
	for _, b := range p {
		z.crc = crcTable[byte(z.crc)^b] ^ z.crc>>8
	}
	z.size += uint32(len(p))
	return z.fw.Write(p)
}

// Close ends the deflate stream and writes the trailer: CRC-32 and the
// length mod 2^32, little-endian.
func (z *gzipWriter) Close() error {
	if err := z.fw.Close(); err != nil {
		return err
	}
	var t [8]byte
	binary.LittleEndian.PutUint32(t[:4], ^z.crc)
	binary.LittleEndian.PutUint32(t[4:], z.size)
	_, err := z.w.Write(t[:])
	return err
}

var (
	crcOnce  sync.Once
	crcTable [256]uint32 // CRC-32 (IEEE), reflected
)

func makeCRCTable() {
	for i := range crcTable {
		c := uint32(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xedb88320
			} else {
				c >>= 1
			}
		}
		crcTable[i] = c
	}
}
