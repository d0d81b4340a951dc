package xcomstore

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestEncode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v       any
		max     int
		want    string
		wantErr string
	}{
		{"list", []int{1, 2, 3}, DefaultMaxSize, "[1,2,3]", ""},
		{"string", "x", 0, `"x"`, ""}, // 0: no limit
		{"at the limit", "abc", 5, `"abc"`, ""},
		{"over the limit", "abcd", 5, "", `xcom "k": value is 6 bytes, over the 5-byte limit`},
		{"not JSON", func() {}, DefaultMaxSize, "", `xcom "k": value is not JSON`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Encode("k", tc.v, tc.max)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Encode = %s, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("Encode = %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

// Numbers stay exact: 1 stays the integer 1, big ones keep their digits.
func TestDecodeKeepsNumbers(t *testing.T) {
	v, err := Decode(json.RawMessage(`{"n": 1, "big": 12345678901234567890, "f": 1.5}`))
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	for k, want := range map[string]string{"n": "1", "big": "12345678901234567890", "f": "1.5"} {
		if n, ok := m[k].(json.Number); !ok || n.String() != want {
			t.Errorf("%s = %#v, want json.Number %s", k, m[k], want)
		}
	}
	if _, err := Decode(json.RawMessage(`{`)); err == nil {
		t.Error("Decode of broken JSON: want an error")
	}
}
