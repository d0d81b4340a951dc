package operators

import (
	"context"
	"fmt"

	"github.com/podflow/podflow/internal/templating"
)

// Render renders one templated option value of the task; strings without
// template syntax are returned as they are.
func Render(ctx context.Context, tc *TaskContext, option, s string) (string, error) {
	if !templating.IsTemplate(s) {
		return s, nil
	}
	t, err := templating.Compile(s)
	if err != nil {
		return "", fmt.Errorf("task %s: option %s: %w", tc.Task.ID, option, err)
	}
	out, err := t.Render(ctx, tc.Template)
	if err != nil {
		return "", fmt.Errorf("task %s: option %s: %w", tc.Task.ID, option, err)
	}
	return out, nil
}

// RenderValue renders every string inside a plain value (strings, lists,
// mappings), returning a rendered copy.
func RenderValue(ctx context.Context, tc *TaskContext, option string, v any) (any, error) {
	switch x := v.(type) {
	case string:
		return Render(ctx, tc, option, x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := RenderValue(ctx, tc, option, e)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := RenderValue(ctx, tc, option, e)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	}
	return v, nil
}
