package secrets

import (
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	c, err := ParseURI("wh", "postgres://user:p%40ss%2Fw@db.example:5432/analytics?sslmode=require")
	if err != nil {
		t.Fatal(err)
	}
	want := Connection{ConnID: "wh", Type: "postgres", Host: "db.example", Port: 5432, Login: "user", Password: "p@ss/w",
		Schema: "analytics", Extra: `{"sslmode":"require"}`}
	if *c != want {
		t.Fatalf("got %+v", *c)
	}
	back, err := ParseURI("wh", c.URI())
	if err != nil || *back != want {
		t.Fatalf("round trip via %s: %+v %v", c.URI(), back, err)
	}
	nested := Connection{ConnID: "k", Type: "google_cloud_platform", Extra: `{"scopes":["a","b"]}`}
	back, err = ParseURI("k", nested.URI())
	if err != nil || back.Type != "google_cloud_platform" || back.Extra != nested.Extra {
		t.Fatalf("nested extra via %s: %+v %v", nested.URI(), back, err)
	}
}

func TestParseURIErrors(t *testing.T) {
	for _, tc := range []struct{ uri, want string }{
		{"no-scheme", "has no scheme"},
		{"postgres://h:notaport/x", "port"},
		{"http://h/?__extra__=notjson", "extra must be a JSON object"},
	} {
		if _, err := ParseURI("c", tc.uri); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.uri, err, tc.want)
		}
	}
}

func TestConnectionFromMapMovesUnknownKeysToExtra(t *testing.T) {
	c, err := ConnectionFromMap("k8s", map[string]any{"conn_type": "kubernetes", "namespace": "jobs", "port": 443,
		"extra": map[string]any{"in_cluster": false}})
	if err != nil {
		t.Fatal(err)
	}
	d := c.ExtraDejson()
	if c.Port != 443 || d["namespace"] != "jobs" || d["in_cluster"] != false {
		t.Fatalf("got %+v", c)
	}
}
