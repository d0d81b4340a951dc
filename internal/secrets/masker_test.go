package secrets

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestMaskerForms(t *testing.T) {
	m := NewMasker(nil)
	secret := `p@ss w/rd"x`
	m.Add(secret)
	m.Add("abc") // too short to mask
	for _, line := range []string{
		"password is " + secret,
		"b64 " + base64.StdEncoding.EncodeToString([]byte(secret)),
		"url " + url.QueryEscape(secret),
		"path " + url.PathEscape(secret),
		"python quote p%40ss%20w/rd%22x",
		`json {"pw": "p@ss w/rd\"x"}`,
	} {
		got := m.Mask(line)
		if !strings.Contains(got, Masked) || strings.Contains(got, "p@ss") || strings.Contains(got, "cEBzcyB3L3JkIng") {
			t.Errorf("Mask(%q) = %q", line, got)
		}
	}
	if got := m.Mask("abc abc"); got != "abc abc" {
		t.Errorf("short value masked: %q", got)
	}
}

func TestMaskerMultiLineSecret(t *testing.T) {
	m := NewMasker(nil)
	m.Add("-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASCBKcwggSjAgEAAoIB\n-----END KEY-----")
	for _, line := range []string{"MIIEvQIBADANBgkqhkiG9w0B", "  AQEFAASCBKcwggSjAgEAAoIB"} {
		if got := m.Mask(line); strings.Contains(got, "AQEF") || strings.Contains(got, "MIIE") {
			t.Errorf("line of a multi-line secret shown: %q", got)
		}
	}
}

func TestSensitiveNames(t *testing.T) {
	m := NewMasker([]string{"Bucket_Key"})
	for name, want := range map[string]bool{
		"api_token": true, "DB_PASSWORD": true, "my_apikey": true, "private_key": true, "Authorization": true,
		"bucket": false, "host": false, "my_bucket_key": true,
	} {
		if got := m.IsSensitive(name); got != want {
			t.Errorf("IsSensitive(%q) = %v", name, got)
		}
	}
}

func TestMaskValue(t *testing.T) {
	m := NewMasker(nil)
	m.Add("hunter22")
	got := fmt.Sprint(m.MaskValue(map[string]any{"a": []any{"x hunter22"}, "token": "other", "n": 1.0}))
	if got != "map[a:[x ***] n:1 token:***]" {
		t.Errorf("MaskValue = %s", got)
	}
}

// BenchmarkMaskLine is one log line against a masker holding 20 secrets
// (each in 7 forms): the cost every task log line pays.
func BenchmarkMaskLine(b *testing.B) {
	m := NewMasker(nil)
	for i := 0; i < 20; i++ {
		m.Add(fmt.Sprintf("secret-value-%02d-xyz", i))
	}
	line := "2026-11-30T10:00:00Z INFO processed batch 12345 of table events in 35ms rows=1000"
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = m.Mask(line)
	}
}
