package node

import "strings"

// imageMissing reports whether image names the tag "missing" (e.g. busybox:missing, reg:5000/a/b:missing):
// the node's way to exercise image-pull failures, since images are otherwise ignored.
func imageMissing(image string) bool {
	ref, _, _ := strings.Cut(image, "@")
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	return colon > slash && ref[colon+1:] == "missing"
}
