package kubernetes

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"k8s.io/apimachinery/pkg/labels"
)

const (
	// maxPodNameLength keeps pod names valid as DNS labels (hostnames).
	maxPodNameLength = 63
	suffixLength     = 8
	suffixAlphabet   = "abcdefghijklmnopqrstuvwxyz0123456789"
)

// Label keys podflow puts on every pod: they identify the task instance's try
// so a restarted worker finds its pod instead of creating a second one.
const (
	LabelDagID        = "dag_id"
	LabelTaskID       = "task_id"
	LabelRunID        = "run_id"
	LabelTryNumber    = "try_number"
	LabelPodOperator  = "kubernetes_pod_operator"
	LabelAlreadyCheck = "already_checked"
)

var nameInvalid = regexp.MustCompile(`[^a-z0-9-]+`)

// SanitizeName is the `name` option as Airflow's KubernetesPodOperator
// keeps it (_set_name): lowercased, every run of characters outside
// [a-z0-9-] replaced by one "-"; nothing is trimmed.
func SanitizeName(s string) string {
	return nameInvalid.ReplaceAllString(strings.ToLower(s), "-")
}

// PodName is the pod's name, by Airflow's rules: a name the user gave
// (option, template or full_pod_spec) is kept and, with a suffix, cut by
// AddUniqueSuffix; without one the name comes from the task id by
// CreateUniqueID. A mapped instance whose pod has no random suffix gets its
// map index as suffix instead, so its siblings' pods do not collide.
func PodName(given, taskID, suffix string, mapIndex int) string {
	if suffix == "" && mapIndex >= 0 {
		suffix = strconv.Itoa(mapIndex)
	}
	if given == "" {
		given = CreateUniqueID(taskID)
		if given == "" {
			given = "pod" // an id of punctuation only; Airflow would build an invalid name
		}
	}
	if suffix == "" {
		return given
	}
	return AddUniqueSuffix(given, suffix)
}

// CreateUniqueID is Airflow's create_unique_id(task_id=…, unique=False):
// the id slugified, cut to 63 characters, "." and "-" trimmed from both
// ends.
func CreateUniqueID(taskID string) string {
	s := Slugify(taskID)
	if len(s) > maxPodNameLength {
		s = s[:maxPodNameLength]
	}
	return strings.Trim(s, ".-")
}

// AddUniqueSuffix is Airflow's add_unique_suffix: name cut so that "-" and
// the suffix fit in 63 characters, "-" and "." trimmed from both ends, then
// "-suffix".
func AddUniqueSuffix(name, suffix string) string {
	limit := maxPodNameLength - len(suffix) - 1
	if limit < 0 {
		limit = 0
	}
	if len(name) > limit {
		name = name[:limit]
	}
	return strings.Trim(name, "-.") + "-" + suffix
}

var (
	slugDisallowed = regexp.MustCompile(`[^-a-z0-9]+`)
	slugDashes     = regexp.MustCompile(`-{2,}`)
)

// Slugify is python-slugify's slugify(s, lowercase=True) as Airflow calls
// it for pod names: quotes become "-", accents are dropped (é → e), text is
// lowercased, commas between digits vanish ("1,000" → "1000"), every run
// of other characters becomes "-", runs of "-" collapse, and "-" is
// trimmed. Letters with no ASCII form count as separators (python-slugify
// transliterates them with unidecode, e.g. "ß" → "ss").
func Slugify(s string) string {
	s = strings.ReplaceAll(s, "'", "-")
	var b strings.Builder
	for _, r := range norm.NFKD.String(s) {
		if unicode.Is(unicode.Mn, r) {
			continue // the accent of a decomposed letter
		}
		b.WriteRune(r)
	}
	s = strings.ToLower(b.String())
	s = dropDigitCommas(s)
	s = slugDisallowed.ReplaceAllString(s, "-")
	s = slugDashes.ReplaceAllString(s, "-")
	return strings.Trim(s, "-")
}

// dropDigitCommas removes each comma between two digits.
func dropDigitCommas(s string) string {
	if !strings.Contains(s, ",") {
		return s
	}
	b := []byte(s)
	out := b[:0:0]
	for i, c := range b {
		if c == ',' && i > 0 && i+1 < len(b) && isDigit(b[i-1]) && isDigit(b[i+1]) {
			continue
		}
		out = append(out, c)
	}
	return string(out)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// RandomSuffix returns 8 random characters from [a-z0-9].
func RandomSuffix() string {
	b := make([]byte, suffixLength)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	for i := range b {
		b[i] = suffixAlphabet[int(b[i])%len(suffixAlphabet)]
	}
	return string(b)
}

// labelUnsafe is what Airflow's make_safe_label_value removes: leading and
// trailing characters that are not alphanumeric, and any character
// outside [a-zA-Z0-9_.-].
var labelUnsafe = regexp.MustCompile(`^[^a-z0-9A-Z]*|[^a-zA-Z0-9_\-\.]|[^a-z0-9A-Z]*$`)

// maxLabelLength is Airflow's MAX_LABEL_LEN.
const maxLabelLength = 63

// SafeLabelValue is Airflow's make_safe_label_value: a value that is
// already safe is kept; otherwise what remains of it after removing the
// unsafe characters, cut to 53 characters, then "-" and the first 9 hex
// digits of the MD5 of the original (so two values never collide).
func SafeLabelValue(s string) string {
	safe := labelUnsafe.ReplaceAllString(s, "")
	if len(safe) <= maxLabelLength && safe == s {
		return safe
	}
	sum := md5.Sum([]byte(s)) //nolint:gosec // a short tag, as Airflow's, not a security measure
	hash := hex.EncodeToString(sum[:])[:9]
	if limit := maxLabelLength - len(hash) - 1; len(safe) > limit {
		safe = safe[:limit]
	}
	return safe + "-" + hash
}

// LabelMapIndex is the label of a mapped instance's pod (Airflow's).
const LabelMapIndex = "map_index"

// PodLabels are the labels identifying a task instance's try; a mapped
// instance's (mapIndex ≥ 0) carry its map_index too.
func PodLabels(dagID, taskID, runID string, tryNumber, mapIndex int) map[string]string {
	l := map[string]string{
		LabelDagID:       SafeLabelValue(dagID),
		LabelTaskID:      SafeLabelValue(taskID),
		LabelRunID:       SafeLabelValue(runID),
		LabelTryNumber:   strconv.Itoa(tryNumber),
		LabelPodOperator: "True",
	}
	if mapIndex >= 0 {
		l[LabelMapIndex] = strconv.Itoa(mapIndex)
	}
	return l
}

// FindSelector selects the pods of a task instance's try that no earlier
// attempt has already finished with (kept pods are marked already_checked).
func FindSelector(podLabels map[string]string) string {
	return labels.SelectorFromSet(podLabels).String() + "," + LabelAlreadyCheck + "!=True"
}
