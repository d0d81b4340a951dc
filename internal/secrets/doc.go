// Package secrets keeps variables and connections: encrypted at rest with
// AES-256-GCM under configured keys (Keyring), resolved for templates and
// operators in one lookup order (Resolver), and masked wherever podflow
// writes what a task printed or was given (Masker).
//
// Lookup order, the same for variables and connections:
//
//	PODFLOW_VAR_<KEY> / PODFLOW_CONN_<ID>  (environment)
//	        │ not set
//	        ▼
//	Kubernetes Secrets backend             (when configured: KubeBackend)
//	        │ not there
//	        ▼
//	podflow.yaml connections:              (connections only)
//	        │ not there
//	        ▼
//	the variables / connections tables     (decrypted with the keyring)
//
// This is Airflow's order (environment before the metastore) with the
// configuration file between them; the backend comes after the environment
// so that one process can always override a value. Every value resolved as sensitive — a
// connection's password, an extra field or variable whose name looks
// sensitive, a variable marked secret — is added to the process's Masker
// before it is handed to a template, so the task's log lines, its error and
// its rendered fields show *** instead.
//
// Ciphertext ("pf1:<key id>:<base64 nonce+sealed>") names its key, so a
// keyring may hold several keys: the first encrypts, all decrypt, and
// `podflow rotate-secret-key` re-encrypts every row under the first. Each
// ciphertext is bound to its row and field (GCM additional data), so a value
// copied into another row fails to decrypt instead of leaking there.
package secrets
