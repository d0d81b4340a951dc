package kubernetes

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
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

// SanitizeName turns a task id or name into Airflow's pod name form:
// lowercased, every run of characters outside [a-z0-9-] replaced by "-",
// leading and trailing "-" stripped.
func SanitizeName(s string) string {
	return strings.Trim(nameInvalid.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// PodName is the pod's name for a task: name sanitised and cut to fit, then
// "-" and the suffix when suffix is not empty.
func PodName(name, suffix string) string {
	n := SanitizeName(name)
	if n == "" {
		n = "pod"
	}
	limit := maxPodNameLength
	if suffix != "" {
		limit -= len(suffix) + 1
	}
	if len(n) > limit {
		n = strings.TrimRight(n[:limit], "-")
	}
	if suffix == "" {
		return n
	}
	return n + "-" + suffix
}

// RandomSuffix returns 8 random characters from [a-z0-9].
func RandomSuffix() string {
	b := make([]byte, suffixLength)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	for i := range b {
		b[i] = suffixAlphabet[int(b[i])%len(suffixAlphabet)]
	}
	return string(b)
}

var (
	labelEdgeInvalid = regexp.MustCompile(`^[^a-zA-Z0-9]+|[^a-zA-Z0-9]+$`)
	labelInvalid     = regexp.MustCompile(`[^a-zA-Z0-9_.-]`)
)

// SafeLabelValue returns s when it is a valid label value; otherwise s with
// invalid characters removed, cut, and "-" plus a hash of s appended, so two
// different values never collide and the result always validates.
func SafeLabelValue(s string) string {
	if len(validation.IsValidLabelValue(s)) == 0 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	hash := hex.EncodeToString(sum[:])[:9]
	safe := labelEdgeInvalid.ReplaceAllString(labelInvalid.ReplaceAllString(s, ""), "")
	if limit := validation.LabelValueMaxLength - len(hash) - 1; len(safe) > limit {
		safe = safe[:limit]
	}
	if safe == "" {
		return hash
	}
	return safe + "-" + hash
}

// PodLabels are the labels identifying a task instance's try.
func PodLabels(dagID, taskID, runID string, tryNumber int) map[string]string {
	return map[string]string{
		LabelDagID:       SafeLabelValue(dagID),
		LabelTaskID:      SafeLabelValue(taskID),
		LabelRunID:       SafeLabelValue(runID),
		LabelTryNumber:   strconv.Itoa(tryNumber),
		LabelPodOperator: "True",
	}
}

// FindSelector selects the pods of a task instance's try that no earlier
// attempt has already finished with (kept pods are marked already_checked).
func FindSelector(podLabels map[string]string) string {
	return labels.SelectorFromSet(podLabels).String() + "," + LabelAlreadyCheck + "!=True"
}
