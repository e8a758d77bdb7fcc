package trace

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// appendStringRef is appendString as it was, byte by byte.
func appendStringRef(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\t':
				b = append(b, '\\', 't')
			case '\r':
				b = append(b, '\\', 'r')
			default: // control characters and <>& (safe inside HTML)
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&15])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendString writes what it wrote, and a quoteCache what appendString
// writes, over strings of every kind of byte, met again and not.
func TestAppendStringSame(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 11))
	alphabet := []string{"a", "Z", "0", " ", "\"", "\\", "<", ">", "&", "\n", "\t", "\r", "\x01", "\x7f", "é", "\u2028", "\u2029", "\xff", "\xe2\x80", "😀"}
	qc := new(quoteCache)
	var pool []string
	for n := 0; n < 20000; n++ {
		var s string
		if len(pool) > 0 && rng.IntN(2) == 0 {
			s = pool[rng.IntN(len(pool))]
		} else {
			var sb strings.Builder
			for k := rng.IntN(12); k > 0; k-- {
				sb.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			s = sb.String()
			pool = append(pool, s)
		}
		want := appendStringRef([]byte("x"), s)
		if got := appendString([]byte("x"), s); !bytes.Equal(got, want) {
			t.Fatalf("%q: %s, was %s", s, got, want)
		}
		if got := qc.appendString([]byte("x"), s); !bytes.Equal(got, want) {
			t.Fatalf("%q through the cache: %s, was %s", s, got, want)
		}
	}
}
