package auth

import (
	"strings"
	"testing"
)

func TestAPIKeyFormatAndMatch(t *testing.T) {
	key, prefix, hash, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if !IsAPIKey(key) || !strings.HasPrefix(key, prefix+"_") || len(prefix) != len("pfk_")+12 || len(key) < 60 {
		t.Fatalf("key %q prefix %q", key, prefix)
	}
	got, err := apiKeyPrefix(key)
	if err != nil || got != prefix {
		t.Fatalf("prefix of the key: %q %v", got, err)
	}
	if !apiKeyMatches(key, hash) {
		t.Fatal("a key does not match its own hash")
	}
	if apiKeyMatches(key+"x", hash) || apiKeyMatches(key[:len(key)-1], hash) {
		t.Fatal("an altered key matches")
	}
	other, _, _, _ := NewAPIKey()
	if other == key {
		t.Fatal("two keys are equal")
	}
	for _, bad := range []string{"pfk_", "pfk_abc_def", "pfk_0123456789ab", "pfk_0123456789ab_", "pfk_zz23456789ab_x", "xyz"} {
		if _, err := apiKeyPrefix(bad); err == nil {
			t.Errorf("apiKeyPrefix(%q) accepted", bad)
		}
	}
}

func TestPasswordAndUsernameChecks(t *testing.T) {
	if _, err := HashPassword("short"); err == nil || strings.Contains(err.Error(), "short\"") {
		t.Fatalf("short password: %v", err)
	}
	if _, err := HashPassword(strings.Repeat("x", 73)); err == nil {
		t.Fatal("73-byte password accepted")
	}
	h, err := HashPassword("correct horse")
	if err != nil || !strings.HasPrefix(h, "$2") {
		t.Fatalf("hash %q %v", h, err)
	}
	for name, ok := range map[string]bool{"alice": true, "a.b-c_d@x.io": true, "": false, "api-key:x": false, "a b": false, "é": false} {
		if err := CheckUsername(name); (err == nil) != ok {
			t.Errorf("CheckUsername(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestRoleFromClaim(t *testing.T) {
	mapping := map[string]Role{"eng": RoleViewer, "oncall": RoleOp, "platform": RoleAdmin}
	cases := []struct {
		name     string
		value    any
		fallback Role
		want     Role
		ok       bool
	}{
		{"one string", "oncall", "", RoleOp, true},
		{"highest of a list", []any{"eng", "platform", "oncall"}, "", RoleAdmin, true},
		{"string list", []string{"eng"}, "", RoleViewer, true},
		{"unmapped, no default", []any{"sales"}, "", "", false},
		{"unmapped, default", []any{"sales"}, RoleViewer, RoleViewer, true},
		{"missing claim", nil, "", "", false},
		{"missing claim, default", nil, RoleViewer, RoleViewer, true},
		{"mapped beats default", "platform", RoleViewer, RoleAdmin, true},
		{"non-strings ignored", []any{1, true, "eng"}, "", RoleViewer, true},
		{"number", 42.0, "", "", false},
	}
	for _, c := range cases {
		got, ok := roleFromClaim(c.value, mapping, c.fallback)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: got %q %v, want %q %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
