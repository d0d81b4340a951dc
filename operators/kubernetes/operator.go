package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/hashicorp/go-hclog"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/templating"
	"github.com/podflow/podflow/operators"
)

// Operator runs kubernetes_pod tasks. One value serves every task of a
// process; it owns the cache of Kubernetes clients.
type Operator struct {
	schema       *dag.OperatorSchema
	clients      *kube.Clients
	sidecarImage string
	nameSuffix   func() string
	inClusterNS  func() string
	now          func() time.Time
	render       renderFunc
	onDone       func(PodEvent) // see podRun.onDone
	conns        operators.Connections
	log          hclog.Logger
	trigger      *podTrigger
	fileRoots    []string // see WithFileRoots
}

// Option configures an Operator.
type Option func(*Operator)

// WithClients shares a client cache (e.g. between the worker and the
// triggerer of one process).
func WithClients(c *kube.Clients) Option { return func(o *Operator) { o.clients = c } }

// WithConnections gives the pod trigger the process's connections, to reach
// the cluster of a task with kubernetes_conn_id (the worker passes them with
// each task instead).
func WithConnections(c operators.Connections) Option { return func(o *Operator) { o.conns = c } }

// WithLogger gives the pod trigger a logger.
func WithLogger(l hclog.Logger) Option { return func(o *Operator) { o.log = l } }

// WithSidecarImage sets the XCom sidecar's image (default "alpine"); a
// connection's xcom_sidecar_container_image wins over it.
func WithSidecarImage(image string) Option { return func(o *Operator) { o.sidecarImage = image } }

// WithNameSuffix replaces the random pod name suffix (tests, golden files).
func WithNameSuffix(f func() string) Option { return func(o *Operator) { o.nameSuffix = f } }

// WithInClusterNamespace replaces the reading of the service account's
// namespace file (tests).
func WithInClusterNamespace(f func() string) Option {
	return func(o *Operator) { o.inClusterNS = f }
}

// New returns the kubernetes_pod operator.
func New(opts ...Option) *Operator {
	o := &Operator{
		schema:       newSchema(),
		sidecarImage: DefaultSidecarImage,
		nameSuffix:   RandomSuffix,
		inClusterNS:  kube.InClusterNamespace,
		now:          time.Now,
		render:       renderTemplate,
	}
	for _, opt := range opts {
		opt(o)
	}
	if o.clients == nil {
		o.clients = kube.NewClients()
	}
	o.trigger = newPodTrigger(o.clients, o.conns, o.log)
	return o
}

var _ operators.Deferrer = (*Operator)(nil)

// Triggers is the pod trigger, sharing the operator's clients.
func (o *Operator) Triggers() []operators.Trigger { return []operators.Trigger{o.trigger} }

// plan is a task's pod and where to run it, before any cluster call.
type plan struct {
	opts    *PodOptions
	pod     *corev1.Pod
	cluster ClusterRef
	conn    Connection
}

// Plan renders the task's templated options with its template context,
// decodes them strictly and builds its pod. It touches no cluster.
func (o *Operator) Plan(ctx context.Context, tc *operators.TaskContext) (*corev1.Pod, error) {
	p, err := o.plan(ctx, tc)
	if err != nil {
		return nil, err
	}
	return p.pod, nil
}

func (o *Operator) plan(ctx context.Context, tc *operators.TaskContext) (*plan, error) {
	opts, err := o.options(ctx, tc)
	if err != nil {
		return nil, err
	}
	conn, err := lookupConnection(ctx, tc.Connections, opts.ConnID)
	if err != nil {
		return nil, err
	}
	if err := o.checkFiles(tc, opts); err != nil {
		return nil, err
	}
	template, err := podTemplate(tc, opts)
	if err != nil {
		return nil, err
	}
	in := BuildInput{
		Options:            opts,
		Template:           template,
		Conn:               conn,
		InClusterNamespace: o.inClusterNS(),
		TaskID:             tc.Task.ID,
		RunID:              tc.RunID,
		TryNumber:          tc.TryNumber,
		Mapped:             tc.Mapped,
		MapIndex:           tc.MapIndex,
		NameSuffix:         o.nameSuffix(),
		SidecarImage:       o.sidecarImage,
	}
	if tc.DAG != nil {
		in.DagID = tc.DAG.ID
	}
	pod, err := BuildPod(in)
	if err != nil {
		return nil, fmt.Errorf("build pod: %w", err)
	}
	return &plan{opts: opts, pod: pod, cluster: clusterRef(opts), conn: conn}, nil
}

// options renders and decodes the task's options.
func (o *Operator) options(ctx context.Context, tc *operators.TaskContext) (*PodOptions, error) {
	t := tc.Task
	names := map[string]bool{}
	for k := range t.Options {
		names[k] = true
	}
	for k := range t.Nodes {
		names[k] = true
	}
	sorted := make([]string, 0, len(names))
	for k := range names {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)

	d := &decoder{rendered: map[*yaml.Node]bool{}}
	mapping := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: t.Line, Column: t.Column}
	for _, name := range sorted {
		n, err := optionNode(t, name)
		if err != nil {
			return nil, err
		}
		if templatedOptions[name] {
			if n, err = renderNode(ctx, n, func(ctx context.Context, src string) (string, error) {
				return o.render(ctx, src, tc.Template)
			}, d.rendered); err != nil {
				return nil, fmt.Errorf("render %s: %w", name, err)
			}
		}
		key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name, Line: n.Line, Column: n.Column}
		mapping.Content = append(mapping.Content, key, n)
	}
	opts := defaultOptions()
	if errs := decodeNode(mapping, &opts, "", d); len(errs) > 0 {
		path := ""
		if tc.DAG != nil {
			path = tc.DAG.Path
		}
		for _, e := range errs {
			e.Path = path
		}
		return nil, fmt.Errorf("task %s: %w", t.ID, dag.Errors(errs))
	}
	if opts.ScheduleTimeout == nil {
		opts.ScheduleTimeout = &opts.StartupTimeout
	}
	return &opts, nil
}

// optionNode is the option's YAML node, or one made from its plain value
// when the task was built without nodes.
func optionNode(t *dag.Task, name string) (*yaml.Node, error) {
	if n := t.Nodes[name]; n != nil {
		return n, nil
	}
	var n yaml.Node
	if err := n.Encode(t.Options[name]); err != nil {
		return nil, fmt.Errorf("option %s: %w", name, err)
	}
	n.Line, n.Column = t.Line, t.Column
	return &n, nil
}

// podTemplate reads pod_template_file (relative to the DAG file) or
// pod_template_dict.
func podTemplate(tc *operators.TaskContext, opts *PodOptions) (*corev1.Pod, error) {
	if opts.PodTemplateDict != nil {
		return opts.PodTemplateDict, nil
	}
	if opts.PodTemplateFile == "" {
		return nil, nil
	}
	return ReadPodTemplate(templatePath(tc, opts))
}

// maxPodTemplateBytes bounds pod_template_file.
const maxPodTemplateBytes = 1 << 20

// ReadPodTemplate reads a Pod manifest strictly; errors carry the file's
// line and column. A file that is not a Pod manifest (no `kind: Pod`, or
// not YAML) is refused without quoting any of its content: the path may
// name a file that is not the DAG author's to read.
func ReadPodTemplate(path string) (*corev1.Pod, error) {
	b, err := readFileUpTo(path, maxPodTemplateBytes)
	if err != nil {
		return nil, fmt.Errorf("pod_template_file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("pod_template_file %s is not a YAML Pod manifest (content not shown)", path)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("pod_template_file %s is empty", path)
	}
	if !looksLikePod(doc.Content[0]) {
		return nil, fmt.Errorf("pod_template_file %s is not a Pod manifest: want `kind: Pod` or a `spec` at its top level (content not shown)", path)
	}
	var pod corev1.Pod
	if errs := decodeNode(doc.Content[0], &pod, "pod", nil); len(errs) > 0 {
		for _, e := range errs {
			e.Path = path
		}
		return nil, fmt.Errorf("pod_template_file: %w", dag.Errors(errs))
	}
	return &pod, nil
}

// looksLikePod reports whether a YAML document is a mapping with `kind:
// Pod`, or without a kind but with a `spec`: only then are decoding errors,
// which may quote keys and values, shown.
func looksLikePod(n *yaml.Node) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	kind, hasSpec := "", false
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "kind":
			kind = n.Content[i+1].Value
		case "spec":
			hasSpec = true
		}
	}
	return kind == "Pod" || kind == "" && hasSpec
}

// readFileUpTo reads a file of at most limit bytes.
func readFileUpTo(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is over %d bytes", path, limit)
	}
	return b, nil
}

// renderFunc renders one template string.
type renderFunc func(ctx context.Context, src string, tctx *templating.Context) (string, error)

func renderTemplate(ctx context.Context, src string, tctx *templating.Context) (string, error) {
	if tctx == nil {
		return "", errors.New("no template context")
	}
	t, err := templating.Compile(src)
	if err != nil {
		return "", err
	}
	return t.Render(ctx, tctx)
}

// renderNode returns a copy of n with every template string (mapping values
// and list items, not keys) rendered; rendered scalars are recorded.
func renderNode(ctx context.Context, n *yaml.Node, render func(context.Context, string) (string, error), rendered map[*yaml.Node]bool) (*yaml.Node, error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return renderNode(ctx, n.Alias, render, rendered)
	}
	c := *n
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag != "!!str" || !templating.IsTemplate(n.Value) {
			return &c, nil
		}
		out, err := render(ctx, n.Value)
		if err != nil {
			return nil, fmt.Errorf("line %d column %d: %w", n.Line, n.Column, err)
		}
		c.Value, c.Style = out, 0
		rendered[&c] = true
		return &c, nil
	case yaml.MappingNode, yaml.SequenceNode, yaml.DocumentNode:
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, child := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 {
				c.Content[i] = child
				continue
			}
			r, err := renderNode(ctx, child, render, rendered)
			if err != nil {
				return nil, err
			}
			c.Content[i] = r
		}
	}
	return &c, nil
}

// Execute runs the task's pod to completion, or, with deferrable: true,
// launches it and hands it to the triggerer.
func (o *Operator) Execute(ctx context.Context, tc *operators.TaskContext) (*operators.Result, error) {
	p, err := o.plan(ctx, tc)
	if err != nil {
		return nil, err
	}
	r, err := o.newRun(tc, p)
	if err != nil {
		return nil, err
	}
	if err := r.launch(ctx); err != nil {
		return nil, err
	}
	if p.opts.Deferrable {
		r.tc.Log.Printf("deferring: pod %s/%s is watched by the triggerer", r.ns, r.name)
		return o.deferTask(r, nil)
	}
	return r.runToEnd(ctx)
}

// deferTask hands the pod to the triggerer; cursors say where the logs
// copied so far end.
func (o *Operator) deferTask(r *podRun, cursors LogCursors) (*operators.Result, error) {
	ta := TriggerArgs{
		Cluster: r.plan.cluster, Namespace: r.ns, Name: r.name,
		StartupTimeoutSeconds: r.plan.opts.StartupTimeout, ScheduleTimeoutSeconds: *r.plan.opts.ScheduleTimeout,
		LogCursors: cursors,
	}
	if li := r.plan.opts.LoggingInterval; li != nil && *li > 0 && r.plan.opts.GetLogs {
		ta.LoggingIntervalSeconds = *li
	}
	args, err := json.Marshal(ta)
	if err != nil {
		return nil, fmt.Errorf("trigger arguments: %w", err)
	}
	return &operators.Result{Deferral: &operators.Deferral{
		Kind: TriggerKind, Args: args, Deadline: r.tc.Deadline, Method: ResumeMethod,
	}}, nil
}

// Resume finishes a deferred task with the pod trigger's event. success,
// failed, error: fetches the logs once, reads the XCom and stops the sidecar,
// applies on_finish_action and returns the task's result. timeout (the
// trigger's deadline, i.e. execution_timeout, passed), or a task whose
// context has already ended: the pod is deleted, as when a synchronous task
// is timed out.
func (o *Operator) Resume(ctx context.Context, tc *operators.TaskContext, method string, ev operators.Event) (*operators.Result, error) {
	if method != ResumeMethod {
		return nil, fmt.Errorf("kubernetes_pod: unknown resume method %q", method)
	}
	// A timeout event arrives after the task's deadline: planning (which
	// renders templates under ctx) must still work to find the pod.
	planCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	p, err := o.plan(planCtx, tc)
	if err != nil {
		return nil, err
	}
	r, err := o.newRun(tc, p)
	if err != nil {
		return nil, err
	}
	if ev.Status == operators.EventProgress {
		return o.progress(ctx, r, ev)
	}
	pe, peErr := podEventOf(ev)
	r.ns, r.name = pe.Namespace, pe.Name
	r.logCursors = pe.LogCursors
	if r.ns == "" || r.name == "" {
		r.ns, r.name = tc.ExternalNamespace, tc.ExternalName
	}
	switch ev.Status {
	case operators.EventTimeout:
		tc.Log.Printf("resumed: the trigger timed out (%s)", ev.Message)
		why := fmt.Errorf("timed out while deferred: %s", ev.Message)
		return nil, r.kill(why, why)
	case operators.EventSuccess, operators.EventFailed, operators.EventError:
		if peErr != nil {
			pe = PodEvent{Status: PodError, Message: "bad trigger event: " + peErr.Error()}
		}
		tc.Log.Printf("resumed: pod %s/%s is %s", r.ns, r.name, pe.Status)
		if ctx.Err() != nil {
			return nil, r.kill(context.Cause(ctx), ctx.Err())
		}
		return r.resume(ctx, pe)
	}
	// DecodeEvent lets no other status through; should one come, the task
	// fails and nothing of it may keep running.
	why := fmt.Errorf("unknown trigger event status %q", ev.Status)
	return nil, r.kill(why, why)
}
