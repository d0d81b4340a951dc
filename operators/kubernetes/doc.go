// Package kubernetes is the kubernetes_pod operator: Airflow's
// KubernetesPodOperator for podflow's YAML DAGs.
//
// A task's options (Airflow's parameter names; Kubernetes objects written as
// in Kubernetes YAML) are checked strictly at validation time, with the line
// and column of any unknown field or wrong type (decode.go, schema.go). At
// run time the templated options are rendered, then decoded into k8s.io/api
// types, and the pod is built by pure functions (builder.go, naming.go):
//
//	pod template (file/dict) ◀ full_pod_spec ◀ operator options    (right wins)
//	→ namespace → name + suffix → identity labels → secrets → XCom sidecar
//
// One try of a task, synchronous (run.go) or deferred (operator.go):
//
//	launch ──▶ pod of this try exists (labels)? ──yes──▶ follow it
//	   │                                    no ──▶ create it
//	   ▼
//	SetExternalID(ns, name)                       (before any waiting)
//	   │
//	   ├─ deferrable ──▶ Deferral{pod trigger} ·····▶ Resume(event) ─┐
//	   ▼                                                             │
//	watch pod ──▶ EvaluatePod on every change and deadline           │
//	   │          (logs streamed as containers start)                │
//	   ▼                                                             ▼
//	base container terminated / error ──▶ finish: read XCom and stop the
//	sidecar (exec, sentinel file), drain logs, result, on_finish_action
//
// EvaluatePod (podstate.go) is the one decision "is this pod done, and how":
// a pure function of the pod and the time, shared with the triggerer. Its
// timeouts count from the pod's own timestamps (creation → PodScheduled →
// last init container end → base container start), so a pod that runs is
// never timed out for startup, however late it is evaluated. Completion is
// the base container's termination, not the pod phase (the sidecar keeps
// the pod running until it is released).
//
// The pod trigger (trigger.go) runs in the triggerer: it follows the pod
// through the shared watch of its namespace (kube.PodWatches) and ends with
// an operators.Event whose detail is the final PodEvent. Resume handles
// every event status.
//
// Killing the task (its context ends: execution_timeout, SIGTERM) or a
// timeout event while deferred deletes the pod with termination_grace_period
// whatever on_finish_action says; cleanup calls use a fresh context so they
// run after the task's has ended.
package kubernetes
