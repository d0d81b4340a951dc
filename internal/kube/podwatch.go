package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// PodWatches shares one pod watch (an informer, label-selected) per
// (cluster, namespace) among everyone waiting on pods there, and routes its
// changes to them by pod name. A watch starts with its first subscriber and
// stops with its last, so ten thousand waits on one namespace cost one
// watch connection and no polling. It is safe for concurrent use.
type PodWatches struct {
	selector string

	mu      sync.Mutex
	watches map[podWatchKey]*podWatch
}

// NewPodWatches returns watches that only see pods matching the label
// selector (e.g. podflow's own pods).
func NewPodWatches(labelSelector string) *PodWatches {
	return &PodWatches{selector: labelSelector, watches: map[podWatchKey]*podWatch{}}
}

type podWatchKey struct {
	cluster   string
	namespace string
}

// podWatch is one shared informer and its subscribers.
type podWatch struct {
	key      podWatchKey
	informer cache.SharedIndexInformer
	stop     chan struct{}
	refs     int // guarded by PodWatches.mu

	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{} // pod name → wake channels
}

// Count is how many shared watches run now.
func (w *PodWatches) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.watches)
}

// Subscribe follows one pod through the shared watch of its cluster and
// namespace (started if none runs). Close the subscription when done.
func (w *PodWatches) Subscribe(client *Client, cluster Cluster, namespace, name string) *PodSubscription {
	pw := w.acquire(podWatchKey{cluster: clusterKey(cluster), namespace: namespace}, client)
	ch := make(chan struct{}, 1)
	pw.mu.Lock()
	if pw.subs[name] == nil {
		pw.subs[name] = map[chan struct{}]struct{}{}
	}
	pw.subs[name][ch] = struct{}{}
	pw.mu.Unlock()
	return &PodSubscription{watches: w, watch: pw, namespace: namespace, name: name, changed: ch}
}

func (w *PodWatches) acquire(key podWatchKey, client *Client) *podWatch {
	w.mu.Lock()
	defer w.mu.Unlock()
	if pw, ok := w.watches[key]; ok {
		pw.refs++
		return pw
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client.Kubernetes, 0,
		informers.WithNamespace(key.namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = w.selector }))
	pw := &podWatch{key: key, informer: factory.Core().V1().Pods().Informer(), stop: make(chan struct{}), refs: 1,
		subs: map[string]map[chan struct{}]struct{}{}}
	notify := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if p, ok := obj.(*corev1.Pod); ok {
			pw.notify(p.Name)
		}
	}
	_, _ = pw.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, obj any) { notify(obj) },
		DeleteFunc: notify,
	})
	go pw.informer.Run(pw.stop)
	w.watches[key] = pw
	return pw
}

func (w *PodWatches) release(pw *podWatch) {
	w.mu.Lock()
	defer w.mu.Unlock()
	pw.refs--
	if pw.refs == 0 {
		close(pw.stop)
		delete(w.watches, pw.key)
	}
}

func (pw *podWatch) notify(name string) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	for ch := range pw.subs[name] {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// clusterKey tells clusters apart without keeping their credentials as map
// keys.
func clusterKey(cl Cluster) string {
	b, _ := json.Marshal(cl)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// PodSubscription is one waiter's view of one pod in a shared watch.
type PodSubscription struct {
	watches         *PodWatches
	watch           *podWatch
	namespace, name string
	changed         chan struct{}
	closeOnce       sync.Once
}

// Changed receives (coalesced) when the pod is added, changes or is
// deleted.
func (s *PodSubscription) Changed() <-chan struct{} { return s.changed }

// WaitSynced waits until the shared watch has listed its namespace once, so
// Pod answers from a complete cache.
func (s *PodSubscription) WaitSynced(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), s.watch.informer.HasSynced) {
		return ctx.Err()
	}
	return nil
}

// Pod is the pod as the watch last saw it; nil when the watch has not seen
// it (not created yet, deleted, or created a moment ago).
func (s *PodSubscription) Pod() (*corev1.Pod, error) {
	obj, ok, err := s.watch.informer.GetIndexer().GetByKey(s.namespace + "/" + s.name)
	if err != nil {
		return nil, fmt.Errorf("read pod %s/%s from the watch: %w", s.namespace, s.name, err)
	}
	if !ok {
		return nil, nil
	}
	return obj.(*corev1.Pod), nil
}

// Close ends the subscription; the watch stops with its last subscriber.
func (s *PodSubscription) Close() {
	s.closeOnce.Do(func() {
		s.watch.mu.Lock()
		delete(s.watch.subs[s.name], s.changed)
		if len(s.watch.subs[s.name]) == 0 {
			delete(s.watch.subs, s.name)
		}
		s.watch.mu.Unlock()
		s.watches.release(s.watch)
	})
}
