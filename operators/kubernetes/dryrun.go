package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/operators"
)

// DryRunContext is a sample task context, as `podflow dry-run` builds one without --run-id: a manual run at
// now, try 1, the DAG's params overridden by conf, no XCom and no cluster.
func DryRunContext(d *dag.DAG, t *dag.Task, conf map[string]any, now time.Time, conns operators.Connections, log operators.Log) *operators.TaskContext {
	now = now.UTC()
	return operators.NewTaskContext(d, t, operators.TaskRun{RunID: dag.RunID("manual", now), TryNumber: 1, LogicalDate: now, Conf: conf}, log, conns)
}

// DryRun builds the pod the task would create, touching no cluster.
func (o *Operator) DryRun(ctx context.Context, tc *operators.TaskContext) (*corev1.Pod, error) {
	if tc.Task.Operator != "" && tc.Task.Operator != OperatorName {
		return nil, fmt.Errorf("task %s is a %s task; dry-run shows kubernetes_pod tasks", tc.Task.ID, tc.Task.Operator)
	}
	return o.Plan(ctx, tc)
}

// ManifestYAML renders a pod as a complete manifest (apiVersion, kind, no
// status) that `kubectl create -f -` accepts.
func ManifestYAML(pod *corev1.Pod) ([]byte, error) {
	p := pod.DeepCopy()
	p.APIVersion, p.Kind = "v1", "Pod"
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode pod: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("encode pod: %w", err)
	}
	delete(m, "status")
	if meta, ok := m["metadata"].(map[string]any); ok {
		delete(meta, "creationTimestamp")
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode pod: %w", err)
	}
	return out, nil
}
