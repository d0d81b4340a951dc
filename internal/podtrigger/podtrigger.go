// Package podtrigger is the triggerer's "pod" trigger kind: it waits for a
// deferred pod task's pod to finish. All triggers of one (cluster,
// namespace) share one watch (an informer label-selected to podflow's pods),
// started with the first trigger and stopped with the last; pod events are
// routed to triggers by pod name. A trigger never polls the API server.
//
// Each wait is decided by kubernetes.EvaluatePod from the pod's own
// timestamps and conditions at evaluation time, so a pod that is running is
// never timed out for startup however late a triggerer looks at it, and a
// pod that finished while no triggerer ran resumes as soon as one claims it.
package podtrigger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/kubernetes"
)

// Kind runs pod triggers.
type Kind struct {
	clients *kube.Clients
	conns   operators.Connections
	log     hclog.Logger
	now     func() time.Time

	mu      sync.Mutex
	watches map[watchKey]*watch
}

// New returns the pod trigger kind.
func New(clients *kube.Clients, conns operators.Connections, log hclog.Logger) *Kind {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Kind{clients: clients, conns: conns, log: log, now: time.Now, watches: map[watchKey]*watch{}}
}

type watchKey struct {
	cluster   string
	namespace string
}

// watch is one shared informer and the triggers waiting on its pods.
type watch struct {
	key      watchKey
	informer cache.SharedIndexInformer
	stop     chan struct{}
	refs     int

	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{} // pod name → wake channels
}

// Watches is how many shared watches run now (one per cluster and namespace).
func (k *Kind) Watches() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.watches)
}

func (k *Kind) resolve(args kubernetes.TriggerArgs) (*kube.Client, kube.Cluster, error) {
	var conn kubernetes.Connection
	if id := args.Cluster.ConnID; id != "" && k.conns != nil {
		if raw, ok := k.conns.Connection(id); ok {
			c, err := kubernetes.ParseConnection(raw)
			if err != nil {
				return nil, kube.Cluster{}, fmt.Errorf("connection %q: %w", id, err)
			}
			conn = c
		}
	}
	cl := args.Cluster.Cluster(conn)
	client, err := k.clients.Get(cl)
	return client, cl, err
}

func clusterKey(cl kube.Cluster) string {
	b, _ := json.Marshal(cl)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Run waits until the pod's wait is over and returns the PodEvent.
func (k *Kind) Run(ctx context.Context, raw json.RawMessage) (json.RawMessage, error) {
	var args kubernetes.TriggerArgs
	if err := json.Unmarshal(raw, &args); err != nil {
		return nil, fmt.Errorf("pod trigger args: %w", err)
	}
	client, cl, err := k.resolve(args)
	if err != nil {
		return nil, err
	}
	w := k.acquire(watchKey{cluster: clusterKey(cl), namespace: args.Namespace}, client)
	defer k.release(w)
	wake := w.subscribe(args.Name)
	defer w.unsubscribe(args.Name, wake)
	if !cache.WaitForCacheSync(ctx.Done(), w.informer.HasSynced) {
		return nil, ctx.Err()
	}
	for {
		pod, err := w.pod(args.Namespace, args.Name)
		if err != nil {
			return nil, err
		}
		if pod == nil {
			// The shared watch may not have seen a pod created a moment ago:
			// ask the API server once before calling it deleted.
			got, err := client.Kubernetes.CoreV1().Pods(args.Namespace).Get(ctx, args.Name, metav1.GetOptions{})
			switch {
			case err == nil:
				pod = got
			case !apierrors.IsNotFound(err):
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, fmt.Errorf("read pod %s/%s: %w", args.Namespace, args.Name, err)
			}
		}
		done, ev := kubernetes.EvaluatePod(pod, k.now(), args.Timeouts())
		if done {
			if pod == nil {
				ev = kubernetes.DeletedEvent(args.Namespace, args.Name)
			}
			return json.Marshal(ev)
		}
		var recheck <-chan time.Time
		if !ev.RecheckAt.IsZero() {
			t := time.NewTimer(time.Until(ev.RecheckAt) + 10*time.Millisecond)
			defer t.Stop()
			recheck = t.C
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		case <-recheck:
		}
	}
}

// Cancel deletes the pod of a trigger whose task was killed while deferred.
func (k *Kind) Cancel(ctx context.Context, raw json.RawMessage) error {
	var args kubernetes.TriggerArgs
	if err := json.Unmarshal(raw, &args); err != nil {
		return fmt.Errorf("pod trigger args: %w", err)
	}
	client, _, err := k.resolve(args)
	if err != nil {
		return err
	}
	err = client.Kubernetes.CoreV1().Pods(args.Namespace).Delete(ctx, args.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pod %s/%s of a killed task: %w", args.Namespace, args.Name, err)
	}
	k.log.Info("deleted the pod of a killed deferred task", "namespace", args.Namespace, "pod", args.Name)
	return nil
}

func (k *Kind) acquire(key watchKey, client *kube.Client) *watch {
	k.mu.Lock()
	defer k.mu.Unlock()
	if w, ok := k.watches[key]; ok {
		w.refs++
		return w
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client.Kubernetes, 0,
		informers.WithNamespace(key.namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = kubernetes.LabelPodOperator + "=True"
		}))
	w := &watch{key: key, informer: factory.Core().V1().Pods().Informer(), stop: make(chan struct{}), refs: 1,
		subs: map[string]map[chan struct{}]struct{}{}}
	notify := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if p, ok := obj.(*corev1.Pod); ok {
			w.notify(p.Name)
		}
	}
	_, _ = w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, obj any) { notify(obj) },
		DeleteFunc: notify,
	})
	go w.informer.Run(w.stop)
	k.watches[key] = w
	k.log.Debug("pod watch started", "namespace", key.namespace)
	return w
}

func (k *Kind) release(w *watch) {
	k.mu.Lock()
	defer k.mu.Unlock()
	w.refs--
	if w.refs == 0 {
		close(w.stop)
		delete(k.watches, w.key)
		k.log.Debug("pod watch stopped", "namespace", w.key.namespace)
	}
}

func (w *watch) subscribe(name string) chan struct{} {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.subs[name] == nil {
		w.subs[name] = map[chan struct{}]struct{}{}
	}
	w.subs[name][ch] = struct{}{}
	return ch
}

func (w *watch) unsubscribe(name string, ch chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.subs[name], ch)
	if len(w.subs[name]) == 0 {
		delete(w.subs, name)
	}
}

func (w *watch) notify(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs[name] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// pod returns the pod from the watch's cache; nil when it does not exist.
func (w *watch) pod(namespace, name string) (*corev1.Pod, error) {
	obj, ok, err := w.informer.GetIndexer().GetByKey(namespace + "/" + name)
	if err != nil {
		return nil, fmt.Errorf("read pod %s/%s from the watch: %w", namespace, name, err)
	}
	if !ok {
		return nil, nil
	}
	return obj.(*corev1.Pod), nil
}
