package node

import "testing"

func TestImageMissing(t *testing.T) {
	for image, want := range map[string]bool{
		"busybox:missing":               true,
		"registry:5000/a/b:missing":     true,
		"busybox":                       false,
		"busybox:latest":                false,
		"registry:5000/missing":         false,
		"missing":                       false,
		"busybox:missing@sha256:abcdef": true,
	} {
		if got := imageMissing(image); got != want {
			t.Errorf("imageMissing(%q) = %v, want %v", image, got, want)
		}
	}
}
