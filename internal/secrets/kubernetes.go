package secrets

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Annotations that make a label-selected Secret a variable or a connection.
const (
	// AnnotationVariable names the variable a Secret holds in its "value" key.
	AnnotationVariable = "podflow.dev/variable"
	// AnnotationConnection names the connection a Secret holds: a "uri" key
	// (Airflow's URI form), or the keys conn_type, host, port, login,
	// password, schema and extra.
	AnnotationConnection = "podflow.dev/connection"
	// DefaultSecretsSelector selects the Secrets podflow reads.
	DefaultSecretsSelector = "podflow.dev/secrets=true"
	// DefaultSecretsTTL is how long one listing of the Secrets is used.
	DefaultSecretsTTL = 30 * time.Second
)

// KubeBackend reads variables and connections from the Secrets of one
// namespace that match a label selector, so platform teams keep credentials
// where they already are. The Secrets are listed at most once per TTL (one
// LIST, whatever the number of lookups), and every value read from them —
// but a connection's type, host, port, login and schema — is masked.
type KubeBackend struct {
	Client    kubernetes.Interface
	Namespace string
	Selector  string        // "" = DefaultSecretsSelector
	TTL       time.Duration // 0 = DefaultSecretsTTL
	Masker    *Masker
	// Now is the clock of the cache; nil = time.Now.
	Now func() time.Time

	mu   sync.Mutex
	snap *kubeSnapshot
}

type kubeSnapshot struct {
	at    time.Time
	vars  map[string]string
	conns map[string]*Connection
	errs  map[string]error // a connection Secret that does not parse, by id
}

// nonSecretFields are the connection fields shown in clear.
var nonSecretFields = map[string]bool{"conn_type": true, "host": true, "port": true, "login": true, "schema": true, "description": true}

func (k *KubeBackend) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// load returns the current listing, listing the Secrets again when the
// cached one is older than the TTL.
func (k *KubeBackend) load(ctx context.Context) (*kubeSnapshot, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ttl := k.TTL
	if ttl <= 0 {
		ttl = DefaultSecretsTTL
	}
	if k.snap != nil && k.now().Sub(k.snap.at) < ttl {
		return k.snap, nil
	}
	sel := k.Selector
	if sel == "" {
		sel = DefaultSecretsSelector
	}
	list, err := k.Client.CoreV1().Secrets(k.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("secrets backend: list Secrets in namespace %s (%s): %w", k.Namespace, sel, err)
	}
	snap := &kubeSnapshot{at: k.now(), vars: map[string]string{}, conns: map[string]*Connection{}, errs: map[string]error{}}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	for _, s := range list.Items {
		data := map[string]string{}
		for key, v := range s.Data {
			data[key] = string(v)
		}
		for key, v := range s.StringData {
			data[key] = v
		}
		where := "Secret " + k.Namespace + "/" + s.Name
		if key := s.Annotations[AnnotationVariable]; key != "" {
			v, ok := data["value"]
			if !ok {
				continue
			}
			snap.vars[key] = v
			k.Masker.Add(v)
		}
		if id := s.Annotations[AnnotationConnection]; id != "" {
			c, err := connectionFromSecret(id, data)
			if err != nil {
				snap.errs[id] = fmt.Errorf("%s: %w", where, err)
			} else {
				snap.conns[id] = c
			}
			for field, v := range data {
				if !nonSecretFields[field] {
					k.Masker.Add(v)
				}
			}
		}
	}
	k.snap = snap
	return snap, nil
}

func connectionFromSecret(id string, data map[string]string) (*Connection, error) {
	if uri, ok := data["uri"]; ok {
		return ParseURI(id, uri)
	}
	m := make(map[string]any, len(data))
	for k, v := range data {
		m[k] = v
	}
	return ConnectionFromMap(id, m)
}

// Variable returns a variable held by a Secret.
func (k *KubeBackend) Variable(ctx context.Context, key string) (string, bool, error) {
	snap, err := k.load(ctx)
	if err != nil {
		return "", false, err
	}
	v, ok := snap.vars[key]
	return v, ok, nil
}

// Connection returns a connection held by a Secret.
func (k *KubeBackend) Connection(ctx context.Context, id string) (*Connection, bool, error) {
	snap, err := k.load(ctx)
	if err != nil {
		return nil, false, err
	}
	if err := snap.errs[id]; err != nil {
		return nil, false, err
	}
	c, ok := snap.conns[id]
	if !ok {
		return nil, false, nil
	}
	cp := *c
	return &cp, true, nil
}

// LoadMasker lists the Secrets (if the cache is stale), which masks them.
func (k *KubeBackend) LoadMasker(ctx context.Context) error {
	_, err := k.load(ctx)
	return err
}
