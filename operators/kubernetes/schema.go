package kubernetes

import (
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/podflow/podflow/dag"
)

// OperatorName is the name tasks use: `operator: kubernetes_pod`.
const OperatorName = "kubernetes_pod"

// simpleKinds are options the parser checks by kind alone; every other
// option is checked by a strict decode into its Go type.
var simpleKinds = map[string]dag.Kind{
	"image": dag.KindString, "name": dag.KindString, "random_name_suffix": dag.KindBool,
	"namespace": dag.KindString, "cmds": dag.KindStringList, "arguments": dag.KindStringList,
	"configmaps": dag.KindStringList, "labels": dag.KindStringMap, "annotations": dag.KindStringMap,
	"node_selector": dag.KindStringMap, "schedulername": dag.KindString, "priority_class_name": dag.KindString,
	"image_pull_policy": dag.KindString, "service_account_name": dag.KindString,
	"automount_service_account_token": dag.KindBool, "hostnetwork": dag.KindBool, "dnspolicy": dag.KindString,
	"hostname": dag.KindString, "subdomain": dag.KindString, "termination_grace_period": dag.KindInt,
	"active_deadline_seconds": dag.KindInt, "termination_message_policy": dag.KindString,
	"pod_template_file": dag.KindString, "do_xcom_push": dag.KindBool, "get_logs": dag.KindBool,
	"log_events_on_failure": dag.KindBool, "is_delete_operator_pod": dag.KindBool,
	"reattach_on_restart": dag.KindBool, "startup_timeout_seconds": dag.KindInt,
	"schedule_timeout_seconds": dag.KindInt, "skip_on_exit_code": dag.KindIntList, "in_cluster": dag.KindBool,
	"config_file": dag.KindString, "cluster_context": dag.KindString, "kubernetes_conn_id": dag.KindString,
	"deferrable": dag.KindBool, "logging_interval": dag.KindInt,
}

// optionFields maps each option name to its Go type in PodOptions.
func optionFields() []field {
	t := reflect.TypeOf(PodOptions{})
	out := make([]field, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out = append(out, field{name: name, typ: t.Field(i).Type})
	}
	return out
}

// Schema declares every option, with strict checks of the Kubernetes objects
// so `podflow validate` reports a misspelt field at its line and column.
func (o *Operator) Schema() *dag.OperatorSchema {
	return o.schema
}

func newSchema() *dag.OperatorSchema {
	s := &dag.OperatorSchema{Name: OperatorName, Validate: validateTask, KeepNodes: true}
	for _, f := range optionFields() {
		opt := dag.Option{Name: f.name, Kind: dag.KindAny, Templated: templatedOptions[f.name]}
		if k, ok := simpleKinds[f.name]; ok {
			opt.Kind = k
		} else {
			opt.Check = checkOption(f)
		}
		s.Options = append(s.Options, opt)
	}
	return s
}

func checkOption(f field) func(*yaml.Node) []*dag.Error {
	return func(n *yaml.Node) []*dag.Error {
		d := &decoder{validating: true}
		d.value(n, f.typ, f.name)
		return d.errs
	}
}

// validateTask checks rules across options.
func validateTask(t *dag.Task) []*dag.Error {
	var errs []*dag.Error
	at := func(name string) (int, int) {
		if n := t.Nodes[name]; n != nil {
			return n.Line, n.Column
		}
		return t.Line, t.Column
	}
	has := func(name string) bool {
		v, ok := t.Options[name]
		return ok && v != nil
	}
	if !has("image") && !has("full_pod_spec") && !has("pod_template_file") && !has("pod_template_dict") {
		errs = append(errs, &dag.Error{Line: t.Line, Column: t.Column,
			Msg: "task " + t.ID + ": kubernetes_pod needs image (or full_pod_spec, pod_template_file or pod_template_dict)"})
	}
	if has("pod_template_file") && has("pod_template_dict") {
		l, c := at("pod_template_dict")
		errs = append(errs, &dag.Error{Line: l, Column: c, Msg: "set only one of pod_template_file and pod_template_dict"})
	}
	if t.Options["in_cluster"] == true && has("config_file") {
		l, c := at("config_file")
		errs = append(errs, &dag.Error{Line: l, Column: c,
			Msg: "in_cluster: true uses the pod's service account; remove config_file or set in_cluster: false"})
	}
	if has("is_delete_operator_pod") && has("on_finish_action") {
		l, c := at("is_delete_operator_pod")
		errs = append(errs, &dag.Error{Line: l, Column: c,
			Msg: "is_delete_operator_pod is the old name of on_finish_action: set only on_finish_action"})
	}
	return errs
}
