package templating

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// standardXCom is what encoding/json with UseNumber gives, as template values.
func standardXCom(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errTrailing
	}
	return toPython(v), nil
}

var errTrailing = errors.New("trailing data after the value")

func TestDecodeXComJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`1`, `-0`, `0`, `1.5`, `-2e3`, `1E+2`, `9223372036854775807`, `9223372036854775808`, `01`, `1.`, `.5`, `+1`, `-`,
		`"a"`, `"é"`, `"a\"b"`, `"\u00e9"`, "\"\xff\"", `"tab	"`,
		`true`, `false`, `null`, `nul`, `[]`, `{}`, ` [1, 2 ,3] `, `[1,]`, `[1 2]`, `{"a":1,"a":2}`, `{"a" 1}`, `{a:1}`,
		`{"b":[1.5,null,true],"a":{"x":[]}}`, `[[[[[]]]]]`, `[1] x`, `[1][2]`, ``, `   `,
	} {
		want, wantErr := standardXCom([]byte(in))
		got, gotErr := decodeXComJSON([]byte(in))
		if (wantErr != nil) != (gotErr != nil) {
			t.Errorf("decode(%q) error = %v, encoding/json error = %v", in, gotErr, wantErr)
			continue
		}
		if wantErr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("decode(%q) = %#v, encoding/json gives %#v", in, got, want)
		}
	}
}

func FuzzDecodeXComJSON(f *testing.F) {
	for _, s := range []string{`[1,2,3,4]`, `{"a": [1.5, null, "x"]}`, `"\u00e9"`, `-0.0e+1`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := standardXCom(data)
		got, gotErr := decodeXComJSON(data)
		if (wantErr != nil) != (gotErr != nil) {
			t.Fatalf("decode(%q) error = %v, encoding/json error = %v", data, gotErr, wantErr)
		}
		if wantErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decode(%q) = %#v, encoding/json gives %#v", data, got, want)
		}
	})
}
