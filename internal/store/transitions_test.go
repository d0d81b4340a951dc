package store

import (
	"testing"
	"time"
)

func TestParseTransitions(t *testing.T) {
	at := func(us int64) time.Time { return time.UnixMicro(us) }
	cases := []struct {
		in      string
		want    []StateChange
		wantErr bool
	}{
		{"", nil, false},
		{"queued,0,1764554479568123;", []StateChange{{0, "queued", at(1764554479568123)}}, false},
		{"queued,0,1;running,1,2;up_for_retry,1,3;", []StateChange{{0, "queued", at(1)}, {1, "running", at(2)}, {1, "up_for_retry", at(3)}}, false},
		{"queued,0", nil, true},
		{"queued,x,1;", nil, true},
		{"queued,0,soon;", nil, true},
		{",0,1;", nil, true},
	}
	for _, c := range cases {
		got, err := parseTransitions(c.in)
		if (err != nil) != c.wantErr {
			t.Errorf("parseTransitions(%q) error %v, want error %v", c.in, err, c.wantErr)
			continue
		}
		if len(got) != len(c.want) {
			t.Errorf("parseTransitions(%q) = %+v, want %+v", c.in, got, c.want)
			continue
		}
		for i := range got {
			if got[i].State != c.want[i].State || got[i].TryNumber != c.want[i].TryNumber || !got[i].At.Equal(c.want[i].At) {
				t.Errorf("parseTransitions(%q)[%d] = %+v, want %+v", c.in, i, got[i], c.want[i])
			}
		}
	}
}
