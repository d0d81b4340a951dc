package web

import (
	"strings"
	"testing"
)

func TestLayOut(t *testing.T) {
	tests := []struct {
		name   string
		nodes  []Node
		layers map[string]int
		rows   map[string]int
		edges  int
		err    string
	}{
		{name: "empty"},
		{name: "chain", nodes: []Node{{ID: "a"}, {ID: "b", Upstream: []string{"a"}}, {ID: "c", Upstream: []string{"b"}}},
			layers: map[string]int{"a": 0, "b": 1, "c": 2}, rows: map[string]int{"a": 0, "b": 0, "c": 0}, edges: 2},
		{name: "diamond: join goes after its longest upstream path",
			nodes: []Node{{ID: "start"}, {ID: "left", Upstream: []string{"start"}}, {ID: "right", Upstream: []string{"start"}},
				{ID: "deep", Upstream: []string{"right"}}, {ID: "join", Upstream: []string{"left", "deep"}}},
			layers: map[string]int{"start": 0, "left": 1, "right": 1, "deep": 2, "join": 3},
			rows:   map[string]int{"left": 0, "right": 1}, edges: 5},
		{name: "barycentre: children follow their parents' order",
			nodes: []Node{{ID: "p1"}, {ID: "p2"}, {ID: "c2", Upstream: []string{"p2"}}, {ID: "c1", Upstream: []string{"p1"}}},
			rows:  map[string]int{"p1": 0, "p2": 1, "c1": 0, "c2": 1}, edges: 2},
		{name: "unknown upstream ignored", nodes: []Node{{ID: "a", Upstream: []string{"ghost"}}}, layers: map[string]int{"a": 0}},
		{name: "cycle", nodes: []Node{{ID: "a", Upstream: []string{"b"}}, {ID: "b", Upstream: []string{"a"}}}, err: "cycle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := LayOut(tt.nodes)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]Placed{}
			for _, p := range l.Nodes {
				got[p.ID] = p
				if p.X+NodeW > l.Width || p.Y+NodeH > l.Height {
					t.Errorf("%s at %d,%d is outside %dx%d", p.ID, p.X, p.Y, l.Width, l.Height)
				}
			}
			for id, want := range tt.layers {
				if got[id].Layer != want {
					t.Errorf("layer of %s = %d, want %d", id, got[id].Layer, want)
				}
			}
			for id, want := range tt.rows {
				if got[id].Row != want {
					t.Errorf("row of %s = %d, want %d", id, got[id].Row, want)
				}
			}
			if len(l.Edges) != tt.edges {
				t.Errorf("%d edges, want %d", len(l.Edges), tt.edges)
			}
			for _, e := range l.Edges {
				if e.X2 <= e.X1 {
					t.Errorf("edge %s→%s points left (%d → %d)", e.From, e.To, e.X1, e.X2)
				}
			}
		})
	}
}
