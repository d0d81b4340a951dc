package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/podflow/podflow/internal/auth"
	"github.com/podflow/podflow/internal/flowtest"
)

// TestSpecRolesMatchTable: each operation's x-podflow-role in the spec is
// operationRoles' entry, and the table has no operation the spec lacks.
func TestSpecRolesMatchTable(t *testing.T) {
	doc, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			if op.OperationID == "" {
				t.Errorf("%s %s has no operationId", method, path)
				continue
			}
			seen[op.OperationID] = true
			want, ok := operationRoles[op.OperationID]
			if !ok {
				t.Errorf("%s (%s %s) is not in operationRoles", op.OperationID, method, path)
				continue
			}
			got, _ := op.Extensions["x-podflow-role"].(string)
			if auth.Role(got) != want {
				t.Errorf("%s: spec says x-podflow-role %q, operationRoles says %q", op.OperationID, got, want)
			}
			if want == roleNone && (op.Security == nil || len(*op.Security) != 0) {
				t.Errorf("%s needs no role but the spec does not say security: []", op.OperationID)
			}
		}
	}
	for id := range operationRoles {
		if !seen[id] {
			t.Errorf("operationRoles has %s, which the spec does not", id)
		}
	}
}

// TestOperationRoles walks every operation of the spec: anonymous gets 401
// (with WWW-Authenticate), a role below the operation's gets 403, the
// operation's role and those above get neither. Path parameters name
// nothing that exists, so no call changes anything.
func TestOperationRoles(t *testing.T) {
	walkOperationRoles(t, setup(t))
}

// The same walk with the real authenticator: users of each role log in
// through POST /auth/token and call with the tokens they got.
func TestOperationRolesRealAuth(t *testing.T) {
	b := setupWith(t, func(fb *flowtest.Bundle) auth.Authenticator {
		svc, err := auth.New(fb.Ctx, fb.Store, auth.Config{Mode: auth.ModeBuiltin}, flowtest.Logger())
		if err != nil {
			t.Fatal(err)
		}
		return svc
	})
	b.adminPassword = "admin-password-1"
	b.tokens = map[string]string{}
	for _, role := range auth.Roles {
		password := string(role) + "-password-1"
		hash, err := auth.HashPassword(password)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Store.CreateUser(b.Ctx, string(role), hash, string(role)); err != nil {
			t.Fatal(err)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		b.must(http.StatusOK, http.MethodPost, "/auth/token", "", map[string]any{"username": string(role), "password": password}).json(t, &tok)
		if tok.AccessToken == "" || strings.Contains(tok.AccessToken, password) {
			t.Fatalf("token for %s: %q", role, tok.AccessToken)
		}
		b.tokens[string(role)] = tok.AccessToken
	}
	// A wrong password is a 401 problem and no token.
	if r := b.call(http.MethodPost, "/auth/token", "", map[string]any{"username": "op", "password": "wrong-password"}); r.Status != http.StatusUnauthorized {
		t.Errorf("wrong password: %d %s", r.Status, r.Body)
	}
	walkOperationRoles(t, b)
}

func walkOperationRoles(t *testing.T, b *testBundle) {
	t.Helper()
	params := strings.NewReplacer("{dag_id}", "nope", "{dag_run_id}", "nope", "{task_id}", "t", "{try_number}", "1",
		"{xcom_key}", "k", "{pool_name}", "nopool")
	n := 0
	for _, path := range b.doc.Paths.InMatchingOrder() {
		for method, op := range b.doc.Paths.Value(path).Operations() {
			need := operationRoles[op.OperationID]
			url := params.Replace(path)
			var body any
			if op.RequestBody != nil {
				body = map[string]any{}
				if op.OperationID == "createToken" {
					body = map[string]any{"username": "admin", "password": b.adminPassword}
				}
			}
			n++
			if need == roleNone {
				if r := b.call(method, url, "", body); r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden {
					t.Errorf("%s anonymous: %d, want neither 401 nor 403: %s", op.OperationID, r.Status, r.Body)
				}
				continue
			}
			r := b.call(method, url, "", body)
			if r.Status != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s anonymous: %d (WWW-Authenticate %q), want 401 Bearer", op.OperationID, r.Status, r.Header.Get("WWW-Authenticate"))
			}
			for _, role := range auth.Roles {
				r := b.call(method, url, string(role), body)
				switch {
				case role.Allows(need) && (r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden):
					t.Errorf("%s as %s (needs %s): %d: %s", op.OperationID, role, need, r.Status, r.Body)
				case !role.Allows(need) && r.Status != http.StatusForbidden:
					t.Errorf("%s as %s (needs %s): %d, want 403: %s", op.OperationID, role, need, r.Status, r.Body)
				}
			}
		}
	}
	if n != len(operationRoles) {
		t.Errorf("walked %d operations, the table has %d", n, len(operationRoles))
	}
}
