package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrNoKey is returned when a value must be encrypted or decrypted and no
// secret key is configured.
var ErrNoKey = errors.New("no secret key configured (set PODFLOW_SECRET_KEY, secret_key or secret_key_file in podflow.yaml; `podflow rotate-secret-key --generate` prints a new key)")

// cipherPrefix starts every ciphertext podflow writes: the format version,
// then the id of the key that encrypted it.
const cipherPrefix = "pf1:"

// Key is one AES-256-GCM key and its id.
type Key struct {
	ID   string
	aead cipher.AEAD
}

// Keyring holds the configured keys. The first encrypts; every key decrypts
// what was encrypted under its id, so a rotation can keep the old key until
// every row has been re-encrypted.
type Keyring struct {
	keys []Key
}

// ParseKeyring reads a key setting: comma-separated keys, each
// "[id:]base64" of 32 random bytes, the first one the primary. A key
// without an id gets one from its hash, so two unnamed keys never share one.
// An empty spec gives a nil keyring (no key configured).
func ParseKeyring(spec string) (*Keyring, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, nil
	}
	kr := &Keyring{}
	seen := map[string]bool{}
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		id, b64, named := strings.Cut(part, ":")
		if !named {
			id, b64 = "", part
		}
		raw, err := decodeKey(b64)
		if err != nil {
			return nil, fmt.Errorf("secret key %d: %w", i+1, err)
		}
		if id == "" {
			sum := sha256.Sum256(raw)
			id = hex.EncodeToString(sum[:4])
		}
		if strings.ContainsAny(id, ": ") {
			return nil, fmt.Errorf("secret key %d: id %q must not contain ':' or spaces", i+1, id)
		}
		if seen[id] {
			return nil, fmt.Errorf("secret key %d: id %q is given twice", i+1, id)
		}
		seen[id] = true
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("secret key %s: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secret key %s: %w", id, err)
		}
		kr.keys = append(kr.keys, Key{ID: id, aead: aead})
	}
	return kr, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("want 32 bytes (AES-256) in base64, got %d bytes", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("not base64 (a key is 32 random bytes in base64, e.g. from `podflow rotate-secret-key --generate`)")
}

// GenerateKey returns a new random key in the form ParseKeyring reads, with
// the given id (none when empty).
func GenerateKey(id string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	k := base64.StdEncoding.EncodeToString(b)
	if id != "" {
		k = id + ":" + k
	}
	return k, nil
}

// PrimaryID is the id of the key that encrypts ("" for a nil keyring).
func (k *Keyring) PrimaryID() string {
	if k == nil || len(k.keys) == 0 {
		return ""
	}
	return k.keys[0].ID
}

// IDs lists the key ids, primary first.
func (k *Keyring) IDs() []string {
	if k == nil {
		return nil
	}
	ids := make([]string, len(k.keys))
	for i, key := range k.keys {
		ids[i] = key.ID
	}
	return ids
}

// Encrypt seals plaintext under the primary key. label binds the ciphertext
// to what it belongs to (e.g. "connection/warehouse/password"): a
// ciphertext copied into another row does not decrypt there.
func (k *Keyring) Encrypt(plaintext, label string) (string, error) {
	if k == nil || len(k.keys) == 0 {
		return "", ErrNoKey
	}
	key := k.keys[0]
	nonce := make([]byte, key.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("encrypt: %w", err)
	}
	sealed := key.aead.Seal(nonce, nonce, []byte(plaintext), []byte(label))
	return cipherPrefix + key.ID + ":" + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// KeyID returns the id of the key a ciphertext was sealed with.
func KeyID(ciphertext string) (string, error) {
	rest, ok := strings.CutPrefix(ciphertext, cipherPrefix)
	if !ok {
		return "", errors.New("not a podflow ciphertext")
	}
	id, _, ok := strings.Cut(rest, ":")
	if !ok {
		return "", errors.New("not a podflow ciphertext")
	}
	return id, nil
}

// Decrypt opens a ciphertext with the key named in it. The errors say which
// key was needed and whether it is absent or wrong; callers add which
// connection or variable it was.
func (k *Keyring) Decrypt(ciphertext, label string) (string, error) {
	id, err := KeyID(ciphertext)
	if err != nil {
		return "", err
	}
	if k == nil || len(k.keys) == 0 {
		return "", fmt.Errorf("encrypted with key %q: %w", id, ErrNoKey)
	}
	sealed, err := base64.RawStdEncoding.DecodeString(ciphertext[len(cipherPrefix)+len(id)+1:])
	if err != nil {
		return "", fmt.Errorf("encrypted with key %q: damaged ciphertext: %w", id, err)
	}
	for _, key := range k.keys {
		if key.ID != id {
			continue
		}
		n := key.aead.NonceSize()
		if len(sealed) < n {
			return "", fmt.Errorf("encrypted with key %q: damaged ciphertext (too short)", id)
		}
		plain, err := key.aead.Open(nil, sealed[:n], sealed[n:], []byte(label))
		if err != nil {
			return "", fmt.Errorf("encrypted with key %q, which does not open it: the configured key %q is not the one it was written with, or the value was tampered with", id, id)
		}
		return string(plain), nil
	}
	return "", fmt.Errorf("encrypted with key %q, which is not configured (configured: %s)", id, strings.Join(k.IDs(), ", "))
}
