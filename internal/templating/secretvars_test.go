package templating

import (
	"context"
	"errors"
	"strings"
	"testing"
)

type fakeSecrets struct {
	vars  map[string]string
	conns map[string]map[string]any
	err   error
	calls int
}

func (f *fakeSecrets) TemplateVariable(_ context.Context, key string) (string, bool, error) {
	f.calls++
	if f.err != nil {
		return "", false, f.err
	}
	v, ok := f.vars[key]
	return v, ok, nil
}

func (f *fakeSecrets) TemplateConnection(_ context.Context, id string) (map[string]any, bool, error) {
	f.calls++
	if f.err != nil {
		return nil, false, f.err
	}
	c, ok := f.conns[id]
	return c, ok, nil
}

func TestVarAndConnTemplates(t *testing.T) {
	sec := &fakeSecrets{
		vars: map[string]string{"bucket": "b1", "cfg": `{"region": "eu", "n": 3, "nested": {"x": "y"}}`, "my-key": "dash"},
		conns: map[string]map[string]any{"wh": {"conn_id": "wh", "conn_type": "postgres", "host": "db.local", "login": "u",
			"password": "pw", "port": int64(5432), "schema": "dw", "extra": `{"sslmode":"require"}`,
			"extra_dejson": map[string]any{"sslmode": "require"}}},
	}
	for _, tc := range []struct{ src, want string }{
		{"{{ var.value.bucket }}", "b1"},
		{"{{ var.value['my-key'] }}", "dash"},
		{"{{ var.json.cfg.region }}-{{ var.json.cfg.n + 1 }}-{{ var.json.cfg.nested.x }}", "eu-4-y"},
		{"{{ var.value.get('missing', 'dflt') }}", "dflt"},
		{"{{ var.value.get('bucket', 'dflt') }}", "b1"},
		{"{{ var.value.get('missing') }}", "None"},
		{"{{ conn.wh.host }}:{{ conn.wh.port }}/{{ conn.wh.schema }} {{ conn.wh.login }}/{{ conn.wh.password }}", "db.local:5432/dw u/pw"},
		{"{{ conn.wh.extra_dejson.sslmode }} {{ conn['wh'].conn_type }}", "require postgres"},
	} {
		got, err := render(t, tc.src, &Context{Secrets: sec})
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s = %q, want %q", tc.src, got, tc.want)
		}
	}
}

func TestVarAndConnTemplateErrors(t *testing.T) {
	sec := &fakeSecrets{vars: map[string]string{"notjson": "{"}, conns: map[string]map[string]any{}}
	for _, tc := range []struct {
		src     string
		secrets SecretLookup
		want    string
	}{
		{"{{ var.value.nope }}", sec, `variable "nope" does not exist`},
		{"{{ var.json.notjson.x }}", sec, `variable "notjson" is not JSON`},
		{"{{ conn.nope.host }}", sec, `connection "nope" does not exist`},
		{"{{ conn.x.host }}", &fakeSecrets{err: errors.New(`connection "x": cannot decrypt password: wrong key`)}, `connection "x": cannot decrypt password`},
		{"{{ var.value.x }}", nil, "variables are not available"},
	} {
		_, err := render(t, tc.src, &Context{Secrets: tc.secrets})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tc.src, err, tc.want)
		}
	}
}

func TestVarLookupIsCachedPerRender(t *testing.T) {
	sec := &fakeSecrets{vars: map[string]string{"a": "1"}}
	got, err := render(t, "{{ var.value.a }}{{ var.value.a }}{{ var.value.a }}", &Context{Secrets: sec})
	if err != nil || got != "111" {
		t.Fatalf("got %q, %v", got, err)
	}
	if sec.calls != 1 {
		t.Errorf("lookups = %d, want 1", sec.calls)
	}
}

func TestStaticCheckKnowsVarAndConn(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want string // "" = no problem
	}{
		{"{{ var.value.x }} {{ var.json.y.z }} {{ conn.c.host }}", ""},
		{"{{ var.vaule.x }}", `var has no attribute "vaule"`},
	} {
		tpl, err := Compile(tc.src)
		if err != nil {
			t.Fatal(err)
		}
		probs := tpl.Check(nil)
		switch {
		case tc.want == "" && len(probs) > 0:
			t.Errorf("%s: unexpected problems %v", tc.src, probs)
		case tc.want != "" && (len(probs) == 0 || !strings.Contains(probs[0].Msg, tc.want)):
			t.Errorf("%s: problems %v, want one containing %q", tc.src, probs, tc.want)
		}
	}
}
