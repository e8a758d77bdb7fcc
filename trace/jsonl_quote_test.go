package trace

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// quotedAsJSON checks q, appendString's quoting of s: JSON that decodes
// to what encoding/json makes of s (an invalid byte becomes U+FFFD), with
// no byte that HTML or JavaScript would read otherwise (<, >, &, control
// characters, U+2028, U+2029) left as it is.
func quotedAsJSON(t *testing.T, s string, q []byte) {
	t.Helper()
	var got, want string
	if err := json.Unmarshal(q, &got); err != nil {
		t.Fatalf("%q: %s is not a JSON string: %v", s, q, err)
	}
	m, _ := json.Marshal(s)
	json.Unmarshal(m, &want)
	if got != want {
		t.Fatalf("%q: %s decodes to %q, want %q", s, q, got, want)
	}
	if i := bytes.IndexFunc(q, func(r rune) bool {
		return r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029'
	}); i >= 0 {
		t.Fatalf("%q: %s holds %q unescaped", s, q, q[i:])
	}
}

// appendString quotes as JSON, and a quoteCache writes what appendString
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
		want := appendString([]byte("x"), s)
		quotedAsJSON(t, s, want[1:])
		if got := qc.appendString([]byte("x"), s); !bytes.Equal(got, want) {
			t.Fatalf("%q through the cache: %s, want %s", s, got, want)
		}
	}
}
