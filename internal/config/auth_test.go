package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func loadWith(t *testing.T, yaml string, env map[string]string) (*Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "podflow.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(Flags{Config: path}, func(k string) string { return env[k] })
}

func TestAuthSettings(t *testing.T) {
	c, err := loadWith(t, "", nil)
	if err != nil || c.Auth != AuthBuiltin || c.AuthTokenTTL != time.Hour || c.AuthSigningKey != "" || c.OIDC != nil {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	file := `auth: none
auth_token_ttl: 15m
auth_signing_key: from-the-file-0123456789abcdef0123
oidc:
  issuer_url: https://sso.example.com
  client_id: podflow
  role_mapping: {platform: admin, oncall: op}
  default_role: viewer
`
	c, err = loadWith(t, file, nil)
	if err != nil || c.Auth != AuthNone || c.AuthTokenTTL != 15*time.Minute ||
		c.AuthSigningKey.Reveal() != "from-the-file-0123456789abcdef0123" ||
		c.OIDC == nil || c.OIDC.RoleMapping["oncall"] != "op" || c.OIDC.DefaultRole != "viewer" {
		t.Fatalf("from the file: %+v %v", c, err)
	}
	c, err = loadWith(t, file, map[string]string{"PODFLOW_AUTH": "builtin", "PODFLOW_AUTH_SIGNING_KEY": "from-the-env-0123456789abcdef0123"})
	if err != nil || c.Auth != AuthBuiltin || c.AuthSigningKey.Reveal() != "from-the-env-0123456789abcdef0123" {
		t.Fatalf("env over file: %+v %v", c, err)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"auth: open\n", "PODFLOW_AUTH"},
		{"auth_token_ttl: soon\n", "auth_token_ttl"},
		{"auth_token_ttl: -1h\n", "auth_token_ttl"},
		{"oidc: {issuer_url: https://sso.example.com}\n", "client_id"},
		{"oidc: {issuer_url: x, client_id: y, role_mapping: {a: b}, scopes: [x]}\n", "scopes"},
	} {
		if _, err := loadWith(t, bad.yaml, nil); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want an error naming %s", bad.yaml, err, bad.want)
		}
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	c := &Config{AuthSigningKey: "hunter2-hunter2-hunter2-hunter2!"}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v %+v %#v %s", c, c, c, c.AuthSigningKey), string(b)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("the signing key is printed: %s", s)
		}
	}
	if c.AuthSigningKey.Reveal() != "hunter2-hunter2-hunter2-hunter2!" {
		t.Error("Reveal lost the value")
	}
}

func TestDagsArePausedAtCreation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "podflow.yaml")
	if err := os.WriteFile(path, []byte("dags_are_paused_at_creation: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	c, err := loadWith(t, "workers: 2\n", nil)
	if err != nil || !c.DagsArePausedAtCreation {
		t.Errorf("default: %v, want paused at creation", err)
	}
	if c, err = Load(Flags{Config: path}, getenv); err != nil || c.DagsArePausedAtCreation {
		t.Errorf("file false: %v %v", c, err)
	}
	env["PODFLOW_DAGS_ARE_PAUSED_AT_CREATION"] = "true"
	if c, err = Load(Flags{Config: path}, getenv); err != nil || !c.DagsArePausedAtCreation {
		t.Errorf("env true over the file: %v %v", c, err)
	}
	env["PODFLOW_DAGS_ARE_PAUSED_AT_CREATION"] = "maybe"
	if _, err = Load(Flags{Config: path}, getenv); err == nil || !strings.Contains(err.Error(), "want true or false") {
		t.Errorf("env maybe: %v", err)
	}
}
