package auth

import "testing"

func TestRoleAllows(t *testing.T) {
	cases := []struct {
		have, need Role
		ok         bool
	}{
		{RoleViewer, RoleViewer, true},
		{RoleViewer, RoleOp, false},
		{RoleOp, RoleViewer, true},
		{RoleOp, RoleAdmin, false},
		{RoleAdmin, RoleOp, true},
		{Role(""), RoleViewer, false},
		{Role("root"), RoleViewer, false},
	}
	for _, c := range cases {
		if got := c.have.Allows(c.need); got != c.ok {
			t.Errorf("%q.Allows(%q) = %v, want %v", c.have, c.need, got, c.ok)
		}
	}
	if _, err := ParseRole("superuser"); err == nil {
		t.Error("ParseRole accepted superuser")
	}
}

func TestAuditEvent(t *testing.T) {
	e := AuditEvent(Principal{Kind: KindAPIKey, Name: "ci", Role: RoleOp}, "10.1.2.3:54321", "trigger")
	if e.Actor != "api-key:ci" || e.Source != "10.1.2.3" || e.Event != "trigger" {
		t.Fatalf("%+v", e)
	}
	if e := AuditEvent(Principal{Kind: KindUser, Name: "alice"}, "[::1]:80", "pause"); e.Actor != "alice" || e.Source != "::1" {
		t.Fatalf("%+v", e)
	}
}
