// Package localkube starts the local Kubernetes cluster (bin/localcluster,
// built from the localcluster/ module) as a child process and waits until
// it is ready. `podflow standalone` runs its tasks on it when KUBECONFIG is
// not set, and the test harness (internal/localenv/kubetest) starts it for
// tests. The cluster dies with the process that started it.
package localkube
