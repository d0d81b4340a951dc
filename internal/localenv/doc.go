// Package localenv is the home of the test harness that gives tests the
// real parts of a local environment instead of mocks; it holds no code of
// its own. Its packages are used from tests only:
//
//	pgtest    a fresh PostgreSQL database per test, on DATABASE_URL's server
//	          or a throwaway local cluster shared by one test binary
//	kubetest  a real Kubernetes cluster (KUBECONFIG's, else bin/localcluster
//	          started once per test binary) and a namespace per test
//
// What the product itself runs locally lives apart: internal/localpg (the
// PostgreSQL runner and the persistent cluster of `podflow standalone`) and
// internal/localkube (the bin/localcluster launcher).
package localenv
