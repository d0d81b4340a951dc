package health

import "testing"

func TestListenAddrDefaultsToLoopback(t *testing.T) {
	tests := map[string]string{
		":8080":         "127.0.0.1:8080",
		":0":            "127.0.0.1:0",
		"0.0.0.0:8080":  "0.0.0.0:8080",
		"10.0.0.5:9090": "10.0.0.5:9090",
		"[::]:8080":     "[::]:8080",
		"localhost:80":  "localhost:80",
	}
	for in, want := range tests {
		if got := ListenAddr(in); got != want {
			t.Errorf("ListenAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
