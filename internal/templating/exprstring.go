package templating

import (
	"sort"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/nodes"
)

// exprString prints an expression back as template source, for error
// messages ("ti.xcom_pull('t')[10]"); gonja's own String() methods print
// debugging forms for calls and literals.
func exprString(n nodes.Node) string {
	var b strings.Builder
	writeExpr(&b, n)
	return b.String()
}

func writeExpr(b *strings.Builder, n nodes.Node) {
	switch x := n.(type) {
	case nil:
		b.WriteString("?")
	case *nodes.Name:
		b.WriteString(x.Name.Val)
	case *nodes.String:
		writePyString(b, x.Val)
	case *nodes.Integer:
		b.WriteString(strconv.Itoa(x.Val))
	case *nodes.Float:
		b.WriteString(pyFloat(x.Val))
	case *nodes.Bool:
		if x.Val {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case *nodes.None:
		b.WriteString("None")
	case *nodes.GetAttribute:
		writeExpr(b, x.Node)
		b.WriteByte('.')
		if x.Attribute != "" {
			b.WriteString(x.Attribute)
		} else {
			b.WriteString(strconv.Itoa(x.Index))
		}
	case *nodes.GetItem:
		writeExpr(b, x.Node)
		b.WriteByte('[')
		writeExpr(b, x.Arg)
		b.WriteByte(']')
	case *nodes.GetSlice:
		writeExpr(b, x.Node)
		b.WriteByte('[')
		if x.Start != nil {
			writeExpr(b, x.Start)
		}
		b.WriteByte(':')
		if x.End != nil {
			writeExpr(b, x.End)
		}
		if x.Step != nil {
			b.WriteByte(':')
			writeExpr(b, x.Step)
		}
		b.WriteByte(']')
	case *nodes.Call:
		writeExpr(b, x.Func)
		writeArgs(b, x.Args, x.Kwargs)
	case *nodes.List:
		b.WriteByte('[')
		writeList(b, x.Val)
		b.WriteByte(']')
	case *nodes.Tuple:
		b.WriteByte('(')
		writeList(b, x.Val)
		b.WriteByte(')')
	case *nodes.Dict:
		b.WriteByte('{')
		for i, p := range x.Pairs {
			if i > 0 {
				b.WriteString(", ")
			}
			writeExpr(b, p.Key)
			b.WriteString(": ")
			writeExpr(b, p.Value)
		}
		b.WriteByte('}')
	case *nodes.BinaryExpression:
		writeExpr(b, x.Left)
		b.WriteByte(' ')
		b.WriteString(x.Operator.Token.Val)
		b.WriteByte(' ')
		writeExpr(b, x.Right)
	case *nodes.Negation:
		b.WriteString("not ")
		writeExpr(b, x.Term)
	case *nodes.UnaryExpression:
		b.WriteString(x.Operator.Val)
		writeExpr(b, x.Term)
	case *nodes.FilteredExpression:
		writeExpr(b, x.Expression)
		for _, f := range x.Filters {
			b.WriteString(" | ")
			b.WriteString(f.Name)
			if len(f.Args) > 0 || len(f.Kwargs) > 0 {
				writeArgs(b, f.Args, f.Kwargs)
			}
		}
	case *nodes.TestExpression:
		writeExpr(b, x.Expression)
		b.WriteString(" is ")
		b.WriteString(x.Test.Name)
	default:
		b.WriteString(n.String())
	}
}

func writeList(b *strings.Builder, items []nodes.Expression) {
	for i, e := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		writeExpr(b, e)
	}
}

func writeArgs(b *strings.Builder, args []nodes.Expression, kwargs map[string]nodes.Expression) {
	b.WriteByte('(')
	writeList(b, args)
	keys := make([]string, 0, len(kwargs))
	for k := range kwargs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 || len(args) > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		writeExpr(b, kwargs[k])
	}
	b.WriteByte(')')
}
