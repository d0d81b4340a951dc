package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Password length limits: bcrypt reads at most 72 bytes, and a longer
// password would silently be cut there, so it is refused instead.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 72
)

// HashPassword checks a new password's length and returns its bcrypt hash.
func HashPassword(password string) (string, error) {
	if err := CheckPassword(password); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword says why a new password is refused, without repeating it.
func CheckPassword(password string) error {
	switch n := len(password); {
	case n < MinPasswordLen:
		return fmt.Errorf("password too short: at least %d characters, got %d", MinPasswordLen, n)
	case n > MaxPasswordLen:
		return fmt.Errorf("password too long: at most %d bytes (bcrypt ignores the rest), got %d", MaxPasswordLen, n)
	}
	return nil
}

// CheckUsername refuses names that would be confusing in the audit log,
// where API keys show as "api-key:NAME" and OIDC users as "oidc:SUBJECT".
func CheckUsername(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("user name %q: want 1 to 128 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@-", r)) {
			return fmt.Errorf("user name %q: only letters, digits and . _ @ - are allowed", name)
		}
	}
	return nil
}

// API keys look like pfk_<12 hex digits>_<43 base64url characters>: the
// first part is the lookup prefix, shown in listings; the rest is 256 random
// bits. Only the SHA-256 of the whole key is stored: the key has enough
// entropy that a fast hash is safe, and it is checked on every request.
const (
	apiKeyTag       = "pfk_"
	apiKeyIDBytes   = 6
	apiKeySecretLen = 32
)

// NewAPIKey generates a key and returns it with its prefix and hash.
func NewAPIKey() (key, prefix string, hash []byte, err error) {
	id := make([]byte, apiKeyIDBytes)
	secret := make([]byte, apiKeySecretLen)
	if _, err := rand.Read(id); err != nil {
		return "", "", nil, fmt.Errorf("generate API key: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return "", "", nil, fmt.Errorf("generate API key: %w", err)
	}
	prefix = apiKeyTag + hex.EncodeToString(id)
	key = prefix + "_" + base64.RawURLEncoding.EncodeToString(secret)
	return key, prefix, hashAPIKey(key), nil
}

// IsAPIKey reports whether a bearer credential looks like an API key.
func IsAPIKey(s string) bool { return strings.HasPrefix(s, apiKeyTag) }

var errMalformedKey = errors.New("malformed API key")

// apiKeyPrefix returns the lookup prefix of a presented key.
func apiKeyPrefix(key string) (string, error) {
	rest, ok := strings.CutPrefix(key, apiKeyTag)
	if !ok {
		return "", errMalformedKey
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 2*apiKeyIDBytes || len(secret) == 0 {
		return "", errMalformedKey
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", errMalformedKey
	}
	return apiKeyTag + id, nil
}

func hashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// apiKeyMatches compares a presented key with a stored hash in constant time.
func apiKeyMatches(key string, stored []byte) bool {
	return subtle.ConstantTimeCompare(hashAPIKey(key), stored) == 1
}
