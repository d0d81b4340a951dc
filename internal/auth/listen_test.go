package auth

import (
	"strings"
	"testing"
)

func TestCheckListen(t *testing.T) {
	cases := []struct {
		mode, addr string
		ok         bool
	}{
		{ModeNone, "127.0.0.1:8080", true},
		{ModeNone, "127.8.9.10:80", true},
		{ModeNone, "[::1]:8080", true},
		{ModeNone, "localhost:8080", true},
		{ModeNone, "LocalHost:8080", true},
		{ModeNone, "127.0.0.1", true},
		{ModeNone, ":8080", false},
		{ModeNone, "0.0.0.0:8080", false},
		{ModeNone, "[::]:8080", false},
		{ModeNone, "10.1.2.3:8080", false},
		{ModeNone, "example.com:8080", false},
		{ModeNone, "localhost.example.com:8080", false},
		{ModeNone, "", false},
		{ModeBuiltin, ":8080", true},
		{ModeBuiltin, "0.0.0.0:8080", true},
	}
	for _, c := range cases {
		err := CheckListen(c.mode, c.addr)
		if (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, %q) = %v, want ok=%v", c.mode, c.addr, err, c.ok)
		}
		if err != nil {
			for _, want := range []string{"auth: none", "PODFLOW_AUTH", c.addr, "127.0.0.1", "builtin"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("CheckListen(%q) message lacks %q: %v", c.addr, want, err)
				}
			}
		}
	}
}
