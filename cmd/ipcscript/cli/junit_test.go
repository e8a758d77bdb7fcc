package cli

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"testing"
)

// The JUnit report is written by hand (appendXML) so that encoding/xml is
// not linked into every process; it must stay byte for byte what
// encoding/xml writes for the same structs, escaping included.
func TestJUnitXMLAsEncodingXML(t *testing.T) {
	nasty := "a\"b'c&d<e>f\tg\nh\ri\x00j\x1fk\xffl\uFFFDm\U0001F600n\uFFFE"
	cases := []*junitSuites{
		{Name: "empty", Time: "0.000", Timestamp: "2026-12-02T10:00:00"},
		{Name: nasty, Tests: 5, Failures: 2, Errors: 1, Skipped: 1, Time: "1.250", Timestamp: "2026-12-02T10:00:00",
			Suites: []*junitSuite{
				{Name: "no cases", Time: "0.000"},
				{Name: "dir/" + nasty, Tests: 4, Failures: 2, Errors: 1, Time: "1.000", Timestamp: "t", Hostname: "host",
					Cases: []junitCase{
						{Name: "pass_test.lua", Classname: "dir", Time: "0.010"},
						{Name: "out_test.lua", Classname: "dir", Time: "0.010", File: "dir/out_test.lua", Output: nasty},
						{Name: "err_test.lua", Classname: "dir", Time: "0.020", Error: &junitProblem{Message: nasty, Type: "load error", Text: nasty}},
						{Name: "fail_test.lua", Classname: "dir", Time: "0.030", File: "f",
							Failure: &junitProblem{Message: "m", Type: "failure", Text: "t\n" + nasty}, Output: "o"},
						{Name: "both", Classname: "dir", Time: "0", Error: &junitProblem{}, Failure: &junitProblem{}},
					}},
			}},
	}
	for i, all := range cases {
		var want bytes.Buffer
		fmt.Fprint(&want, xml.Header)
		enc := xml.NewEncoder(&want)
		enc.Indent("", "  ")
		if err := enc.EncodeElement(all, xml.StartElement{Name: xml.Name{Local: "testsuites"}}); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&want)
		if got := all.appendXML(nil); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("case %d:\n got %q\nwant %q", i, got, want.Bytes())
		}
	}
}
