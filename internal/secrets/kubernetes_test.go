package secrets

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func secret(name string, labels, annotations map[string]string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "vault", Labels: labels, Annotations: annotations}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func TestKubeBackendReadsLabelledSecretsAndMasksThem(t *testing.T) {
	sel := map[string]string{"podflow.dev/secrets": "true"}
	client := fake.NewSimpleClientset(
		secret("api", sel, map[string]string{AnnotationVariable: "api_token"}, map[string]string{"value": "tok-from-k8s-1"}),
		secret("wh", sel, map[string]string{AnnotationConnection: "warehouse"}, map[string]string{"uri": "postgres://u:k8s-pass-2@db:5432/dw"}),
		secret("fields", sel, map[string]string{AnnotationConnection: "api"}, map[string]string{"conn_type": "http", "host": "api.example", "password": "k8s-pass-3"}),
		secret("broken", sel, map[string]string{AnnotationConnection: "broken"}, map[string]string{"uri": "no-scheme"}),
		secret("unlabelled", nil, map[string]string{AnnotationVariable: "hidden"}, map[string]string{"value": "never-read-4"}),
	)
	lists := 0
	client.PrependReactor("list", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		lists++
		return false, nil, nil
	})
	now := time.Unix(1000, 0)
	m := NewMasker(nil)
	k := &KubeBackend{Client: client, Namespace: "vault", Masker: m, TTL: time.Minute, Now: func() time.Time { return now }}
	r := &Resolver{Getenv: func(string) string { return "" }, Backend: k, Masker: m}
	ctx := context.Background()

	v, found, err := r.Variable(ctx, "api_token")
	if err != nil || !found || v.Value != "tok-from-k8s-1" {
		t.Fatalf("variable: %+v %v %v", v, found, err)
	}
	c, found, err := r.Connection(ctx, "warehouse")
	if err != nil || !found || c.Password != "k8s-pass-2" || c.Host != "db" {
		t.Fatalf("connection from a URI: %+v %v %v", c, found, err)
	}
	c, found, err = r.Connection(ctx, "api")
	if err != nil || !found || c.Password != "k8s-pass-3" || c.Type != "http" {
		t.Fatalf("connection from fields: %+v %v %v", c, found, err)
	}
	if _, _, err := r.Connection(ctx, "broken"); err == nil || !strings.Contains(err.Error(), "Secret vault/broken") {
		t.Errorf("a broken Secret: %v", err)
	}
	if _, found, _ := r.Variable(ctx, "hidden"); found {
		t.Error("an unlabelled Secret was read")
	}
	if lists != 1 {
		t.Errorf("%d LISTs for five lookups within the TTL, want 1", lists)
	}
	for _, s := range []string{"tok-from-k8s-1", "k8s-pass-2", "k8s-pass-3"} {
		if got := m.Mask("x " + s); got != "x ***" {
			t.Errorf("%s not masked: %q", s, got)
		}
	}
	if got := m.Mask("api.example"); got != "api.example" {
		t.Errorf("a host was masked: %q", got)
	}
	now = now.Add(2 * time.Minute)
	if _, _, err := r.Variable(ctx, "api_token"); err != nil || lists != 2 {
		t.Errorf("after the TTL: %d LISTs, %v", lists, err)
	}
}
