package web

import (
	"fmt"
	"sort"
)

// Node is a task to lay out: its id and the ids of its upstream tasks.
type Node struct {
	ID       string
	Upstream []string
}

// Placed is a task's place in the graph, in SVG user units.
type Placed struct {
	ID    string
	Layer int
	Row   int
	X, Y  int
}

// Edge joins an upstream task's right side to a downstream task's left.
type Edge struct {
	From, To               string
	X1, Y1, X2, Y2, CX, CY int // CX,CY: the curve's control offset
}

// Layout is a left-to-right layered drawing of a DAG.
type Layout struct {
	Nodes         []Placed
	Edges         []Edge
	Width, Height int
}

// Box sizes and gaps of the drawing.
const (
	NodeW  = 170
	NodeH  = 34
	gapX   = 60
	gapY   = 16
	margin = 10
)

// LayOut places a DAG's tasks left to right: a task's layer is the
// longest path from a root to it (so every edge points right), and inside
// a layer tasks are ordered by the mean row of their upstreams (barycentre
// ordering), which keeps most edges short and uncrossed; ties keep file
// order. Unknown upstream ids are ignored (the parser has refused them);
// a cycle is an error.
func LayOut(nodes []Node) (Layout, error) {
	index := make(map[string]int, len(nodes))
	for i, n := range nodes {
		index[n.ID] = i
	}
	layer := make([]int, len(nodes))
	state := make([]int, len(nodes)) // 0 new, 1 visiting, 2 done
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case 1:
			return fmt.Errorf("task %s is part of a cycle", nodes[i].ID)
		case 2:
			return nil
		}
		state[i] = 1
		for _, u := range nodes[i].Upstream {
			j, ok := index[u]
			if !ok {
				continue
			}
			if err := visit(j); err != nil {
				return err
			}
			layer[i] = max(layer[i], layer[j]+1)
		}
		state[i] = 2
		return nil
	}
	for i := range nodes {
		if err := visit(i); err != nil {
			return Layout{}, err
		}
	}
	layers := 0
	for _, l := range layer {
		layers = max(layers, l+1)
	}
	byLayer := make([][]int, layers)
	for i, l := range layer {
		byLayer[l] = append(byLayer[l], i)
	}
	row := make([]float64, len(nodes))
	for _, ids := range byLayer {
		weight := make(map[int]float64, len(ids))
		for pos, i := range ids {
			sum, n := 0.0, 0
			for _, u := range nodes[i].Upstream {
				if j, ok := index[u]; ok {
					sum += row[j]
					n++
				}
			}
			weight[i] = float64(pos) // roots keep file order
			if n > 0 {
				weight[i] = sum / float64(n)
			}
		}
		sort.SliceStable(ids, func(a, b int) bool { return weight[ids[a]] < weight[ids[b]] })
		for pos, i := range ids {
			row[i] = float64(pos)
		}
	}
	out := Layout{}
	rows := 0
	pos := make(map[string]Placed, len(nodes))
	for l, ids := range byLayer {
		rows = max(rows, len(ids))
		for r, i := range ids {
			p := Placed{ID: nodes[i].ID, Layer: l, Row: r, X: margin + l*(NodeW+gapX), Y: margin + r*(NodeH+gapY)}
			pos[p.ID] = p
		}
	}
	for _, n := range nodes {
		out.Nodes = append(out.Nodes, pos[n.ID])
	}
	for _, n := range nodes {
		to := pos[n.ID]
		for _, u := range n.Upstream {
			from, ok := pos[u]
			if !ok {
				continue
			}
			out.Edges = append(out.Edges, Edge{From: u, To: n.ID, X1: from.X + NodeW, Y1: from.Y + NodeH/2,
				X2: to.X, Y2: to.Y + NodeH/2, CX: gapX / 2})
		}
	}
	out.Width = 2*margin + layers*(NodeW+gapX) - gapX
	out.Height = 2*margin + rows*(NodeH+gapY) - gapY
	if len(nodes) == 0 {
		out.Width, out.Height = 2*margin, 2*margin
	}
	return out, nil
}
