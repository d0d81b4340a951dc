package secrets

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Masked is what a secret value is replaced with.
const Masked = "***"

// MinMaskedLength: shorter values are not masked (Airflow's
// min_length_masked_secret), so that a password "ab" does not turn every
// "ab" of a log into ***.
const MinMaskedLength = 5

// SensitiveNames are the name fragments that make a variable or an extra
// field secret (Airflow's DEFAULT_SENSITIVE_FIELDS), matched
// case-insensitively anywhere in the name.
var SensitiveNames = []string{
	"access_token", "api_key", "apikey", "authorization", "passphrase", "passwd", "password",
	"private_key", "secret", "token", "keyfile_dict", "service_account", "credential",
}

// Masker replaces known secret values in text. Values are added as they are
// resolved; Mask is safe for concurrent use and takes no lock: it reads an
// immutable snapshot, which Add replaces.
type Masker struct {
	names []string
	mu    sync.Mutex // serialises Add
	seen  map[string]bool
	snap  atomic.Pointer[maskSnapshot]
}

type maskSnapshot struct {
	patterns []string // longest first
	replacer *strings.Replacer
	// filter has a bit set for the hash of every pattern's first four
	// bytes, and byPrefix lists the patterns by those bytes: a line is
	// scanned once, whatever the number of secrets, and the replacer runs
	// only on lines that hold one.
	filter   [filterBits / 64]uint64
	byPrefix map[uint32][]string
}

const filterBits = 1 << 16

func prefix4(s string, i int) uint32 {
	return uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
}

func filterIndex(p uint32) uint32 { return (p * 2654435761) >> 16 }

// NewMasker returns a masker that also treats names containing any of
// extraNames (sensitive_var_conn_names) as sensitive.
func NewMasker(extraNames []string) *Masker {
	m := &Masker{seen: map[string]bool{}}
	for _, n := range append(append([]string{}, SensitiveNames...), extraNames...) {
		if n = strings.ToLower(strings.TrimSpace(n)); n != "" {
			m.names = append(m.names, n)
		}
	}
	return m
}

// IsSensitive says whether a variable key or field name marks its value
// secret.
func (m *Masker) IsSensitive(name string) bool {
	name = strings.ToLower(name)
	names := SensitiveNames
	if m != nil {
		names = m.names
	}
	for _, n := range names {
		if strings.Contains(name, n) {
			return true
		}
	}
	return false
}

// Add makes value and its encoded forms masked from now on.
func (m *Masker) Add(value string) {
	if m == nil {
		return
	}
	forms := maskForms(value)
	if len(forms) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	added := false
	for _, f := range forms {
		if !m.seen[f] {
			m.seen[f] = true
			added = true
		}
	}
	if !added {
		return
	}
	patterns := make([]string, 0, len(m.seen))
	for p := range m.seen {
		patterns = append(patterns, p)
	}
	// Longest first: strings.Replacer tries its patterns in argument order
	// at each position, so a value's longer encoding wins over a prefix.
	sort.Slice(patterns, func(i, j int) bool {
		if len(patterns[i]) != len(patterns[j]) {
			return len(patterns[i]) > len(patterns[j])
		}
		return patterns[i] < patterns[j]
	})
	pairs := make([]string, 0, 2*len(patterns))
	for _, p := range patterns {
		pairs = append(pairs, p, Masked)
	}
	snap := &maskSnapshot{patterns: patterns, replacer: strings.NewReplacer(pairs...), byPrefix: map[uint32][]string{}}
	for _, p := range patterns {
		pre := prefix4(p, 0)
		h := filterIndex(pre)
		snap.filter[h/64] |= 1 << (h % 64)
		snap.byPrefix[pre] = append(snap.byPrefix[pre], p)
	}
	m.snap.Store(snap)
}

// maskForms are the strings a value may appear as in a log: itself, its
// base64 (padded and not, standard and URL alphabet), its URL-escaped (Go's
// and Python's) and
// JSON-escaped forms, and — for a value of several lines, such as a private
// key printed line by line — each of its lines.
func maskForms(value string) []string {
	var forms []string
	add := func(s string) {
		if len(s) >= MinMaskedLength {
			forms = append(forms, s)
		}
	}
	if len(value) < MinMaskedLength {
		return nil
	}
	add(value)
	add(base64.StdEncoding.EncodeToString([]byte(value)))
	add(base64.RawStdEncoding.EncodeToString([]byte(value)))
	add(base64.URLEncoding.EncodeToString([]byte(value)))
	add(url.QueryEscape(value))
	add(url.PathEscape(value))
	// Python's urllib.parse.quote (Jinja's urlencode): "/" kept, space as %20.
	add(strings.NewReplacer("%2F", "/", "+", "%20").Replace(url.QueryEscape(value)))
	if b, err := json.Marshal(value); err == nil {
		add(string(b[1 : len(b)-1]))
	}
	if strings.ContainsAny(value, "\r\n") {
		for _, line := range strings.FieldsFunc(value, func(r rune) bool { return r == '\n' || r == '\r' }) {
			add(strings.TrimSpace(line))
		}
	}
	return forms
}

// Mask returns s with every known secret replaced by ***. A line without
// any secret costs one pass over its bytes and no allocation.
func (m *Masker) Mask(s string) string {
	if m == nil {
		return s
	}
	snap := m.snap.Load()
	if snap == nil {
		return s
	}
	for i := 0; i+MinMaskedLength <= len(s); i++ {
		pre := prefix4(s, i)
		h := filterIndex(pre)
		if snap.filter[h/64]&(1<<(h%64)) == 0 {
			continue
		}
		for _, p := range snap.byPrefix[pre] {
			if strings.HasPrefix(s[i:], p) {
				return snap.replacer.Replace(s)
			}
		}
	}
	return s
}

// MaskValue masks a decoded JSON value (an XCom, rendered options): every
// string is masked, and the value under a sensitive key is replaced whole.
func (m *Masker) MaskValue(v any) any {
	switch x := v.(type) {
	case string:
		return m.Mask(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if m.IsSensitive(k) && e != nil {
				if _, isMap := e.(map[string]any); !isMap {
					out[k] = Masked
					continue
				}
			}
			out[k] = m.MaskValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = m.MaskValue(e)
		}
		return out
	}
	return v
}
