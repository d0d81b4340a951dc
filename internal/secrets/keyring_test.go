package secrets

import (
	"errors"
	"strings"
	"testing"
)

func mustKey(t *testing.T, id string) string {
	t.Helper()
	k, err := GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustKeyring(t *testing.T, spec string) *Keyring {
	t.Helper()
	kr, err := ParseKeyring(spec)
	if err != nil {
		t.Fatalf("ParseKeyring: %v", err)
	}
	return kr
}

func TestKeyringRoundTripAndRotation(t *testing.T) {
	oldKey, newKey := mustKey(t, "old"), mustKey(t, "new")
	oldRing := mustKeyring(t, oldKey)
	ct, err := oldRing.Encrypt("s3cr3t", "connection/a/password")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ct, "s3cr3t") || !strings.HasPrefix(ct, "pf1:old:") {
		t.Fatalf("ciphertext %q", ct)
	}
	both := mustKeyring(t, newKey+","+oldKey)
	if both.PrimaryID() != "new" {
		t.Fatalf("primary %q", both.PrimaryID())
	}
	if got, err := both.Decrypt(ct, "connection/a/password"); err != nil || got != "s3cr3t" {
		t.Fatalf("decrypt with both keys: %q, %v", got, err)
	}
	ct2, _ := both.Encrypt("s3cr3t", "x")
	if id, _ := KeyID(ct2); id != "new" {
		t.Fatalf("new ciphertext under %q", id)
	}
	if _, err := mustKeyring(t, newKey).Decrypt(ct, "connection/a/password"); err == nil || !strings.Contains(err.Error(), `"old", which is not configured`) {
		t.Fatalf("old ciphertext with only the new key: %v", err)
	}
}

func TestKeyringRefusesWrongKeyWrongRowAndNoKey(t *testing.T) {
	kr := mustKeyring(t, mustKey(t, "k1"))
	ct, _ := kr.Encrypt("pw", "connection/a/password")
	impostor := mustKeyring(t, mustKey(t, "k1")) // same id, other bytes
	if _, err := impostor.Decrypt(ct, "connection/a/password"); err == nil || !strings.Contains(err.Error(), "does not open it") {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := kr.Decrypt(ct, "connection/b/password"); err == nil {
		t.Error("a ciphertext moved to another row decrypted")
	}
	var none *Keyring
	if _, err := none.Decrypt(ct, "connection/a/password"); !errors.Is(err, ErrNoKey) {
		t.Errorf("no key: %v", err)
	}
	if _, err := none.Encrypt("pw", "x"); !errors.Is(err, ErrNoKey) {
		t.Errorf("encrypt without key: %v", err)
	}
}

func TestParseKeyringErrors(t *testing.T) {
	k := mustKey(t, "")
	for _, tc := range []struct{ spec, want string }{
		{"not-base64!!", "not base64"},
		{"YWJj", "want 32 bytes"},
		{"a:" + k + ",a:" + k, `id "a" is given twice`},
	} {
		if _, err := ParseKeyring(tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.spec, err, tc.want)
		}
	}
	if kr, err := ParseKeyring(""); kr != nil || err != nil {
		t.Errorf("empty spec: %v %v", kr, err)
	}
	kr := mustKeyring(t, k)
	if len(kr.PrimaryID()) != 8 {
		t.Errorf("derived id %q", kr.PrimaryID())
	}
}
