// Package config resolves podflow's settings: flags first, then PODFLOW_*
// environment variables, then an optional podflow.yaml, then defaults.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// File is podflow.yaml. Every key is optional.
type File struct {
	DatabaseURL string         `yaml:"database_url"`
	DagsFolder  string         `yaml:"dags_folder"`
	Workers     int            `yaml:"workers"`
	Capacity    int            `yaml:"capacity"`
	Pools       map[string]int `yaml:"pools"`
	// DagsArePausedAtCreation: new DAGs start paused (Airflow's default);
	// nil means true.
	DagsArePausedAtCreation *bool                     `yaml:"dags_are_paused_at_creation"`
	Connections             map[string]map[string]any `yaml:"connections"`
	ZombieThreshold         string                    `yaml:"zombie_threshold"`
	MaxMapLength            int                       `yaml:"max_map_length"`
	HealthAddr              string                    `yaml:"health_addr"`
	AllowedPaths            []string                  `yaml:"allowed_paths"`
	Auth                    string                    `yaml:"auth"`
	AuthTokenTTL            string                    `yaml:"auth_token_ttl"`
	AuthSigningKey          Secret                    `yaml:"auth_signing_key"`
	OIDC                    *OIDC                     `yaml:"oidc"`
	Notifiers               map[string]Notifier       `yaml:"notifiers"`
	Alerts                  AlertsFile                `yaml:"alerts"`
	// SecretKey encrypts variables and connections in the database
	// ("[id:]base64,…", first encrypts); SecretKeyFile holds the same.
	SecretKey             Secret          `yaml:"secret_key"`
	SecretKeyFile         string          `yaml:"secret_key_file"`
	SensitiveVarConnNames []string        `yaml:"sensitive_var_conn_names"`
	SecretsBackend        *SecretsBackend `yaml:"secrets_backend"`
}

// SecretsBackend is the secrets_backend block of podflow.yaml: where else
// variables and connections are looked up.
type SecretsBackend struct {
	Kubernetes *KubernetesSecrets `yaml:"kubernetes"`
}

// KubernetesSecrets reads variables and connections from label-selected
// Secrets of one namespace (internal/secrets.KubeBackend).
type KubernetesSecrets struct {
	Namespace      string `yaml:"namespace"`
	LabelSelector  string `yaml:"label_selector"` // default podflow.dev/secrets=true
	CacheTTL       string `yaml:"cache_ttl"`      // default 30s
	ConfigFile     string `yaml:"config_file"`    // kubeconfig; default KUBECONFIG, ~/.kube/config
	ClusterContext string `yaml:"cluster_context"`
	InCluster      bool   `yaml:"in_cluster"`
}

// OIDC is the oidc block of podflow.yaml: single sign-on with ID tokens of
// an OpenID Connect provider, sent to the API as bearer tokens.
type OIDC struct {
	IssuerURL   string            `yaml:"issuer_url"`
	ClientID    string            `yaml:"client_id"`
	RoleClaim   string            `yaml:"role_claim"`   // default groups
	RoleMapping map[string]string `yaml:"role_mapping"` // claim value → viewer | op | admin
	DefaultRole string            `yaml:"default_role"` // empty: refuse unmapped users
}

// Secret is a setting that must never be printed: formatted with %v or %s,
// or marshalled, it shows as [redacted]. Reveal gives the value.
type Secret string

// String hides the value from fmt and loggers.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString hides the value from %#v.
func (s Secret) GoString() string { return s.String() }

// MarshalText hides the value from encoders.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the value.
func (s Secret) Reveal() string { return string(s) }

// Config is the resolved configuration.
type Config struct {
	DatabaseURL     string
	DagsFolder      string
	Workers         int
	Capacity        int
	Pools           map[string]int
	Connections     map[string]map[string]any
	ZombieThreshold time.Duration
	HealthAddr      string
	// MaxMapLength bounds the instances of a mapped task (max_map_length,
	// default 1024 as Airflow).
	MaxMapLength int
	// AllowedPaths are folders besides the DAGs folder whose files DAGs may
	// name (pod_template_file, config_file).
	AllowedPaths []string
	// DagsArePausedAtCreation: DAGs new to the database start paused unless
	// they say is_paused_upon_creation: false (default true, as Airflow).
	DagsArePausedAtCreation bool
	// Auth is how the webserver authenticates: AuthBuiltin (users, API
	// keys, optional OIDC) or AuthNone (loopback only).
	Auth           string
	AuthTokenTTL   time.Duration
	AuthSigningKey Secret
	OIDC           *OIDC
	// SecretKey is the keyring setting (internal/secrets.ParseKeyring):
	// PODFLOW_SECRET_KEY, else secret_key, else the file named by
	// PODFLOW_SECRET_KEY_FILE or secret_key_file. Empty: no key.
	SecretKey Secret
	// SensitiveVarConnNames are name fragments that make a variable or an
	// extra field secret, besides Airflow's list.
	SensitiveVarConnNames []string
	// KubernetesSecrets, when set, is the Kubernetes Secrets backend.
	KubernetesSecrets *KubernetesSecrets
	// KubernetesSecretsTTL is how long one listing of its Secrets is used.
	KubernetesSecretsTTL time.Duration
	// Notifiers are podflow.yaml's notifiers by name (see notifiers.go);
	// Alerts is how the scheduler delivers their messages.
	Notifiers map[string]Notifier
	Alerts    Alerts
	// Path is the podflow.yaml that was read, "" if none.
	Path string
}

// Defaults.
const (
	DefaultDagsFolder      = "./dags"
	DefaultWorkers         = 16
	DefaultCapacity        = 1000
	DefaultZombieThreshold = 30 * time.Second
	DefaultPoolSlots       = 128  // default_pool, as Airflow
	DefaultMaxMapLength    = 1024 // max_map_length, as Airflow
	DefaultAuthTokenTTL    = time.Hour

	AuthBuiltin = "builtin"
	AuthNone    = "none"
)

// Flags are the values given on the command line; empty/zero = not given.
type Flags struct {
	Config          string
	DatabaseURL     string
	DagsFolder      string
	Workers         int
	Capacity        int
	ZombieThreshold time.Duration
	HealthAddr      string
}

// Load resolves the configuration. getenv is os.Getenv in production.
func Load(f Flags, getenv func(string) string) (*Config, error) {
	path, explicit := f.Config, f.Config != ""
	if path == "" {
		if p := getenv("PODFLOW_CONFIG"); p != "" {
			path, explicit = p, true
		} else {
			path = "podflow.yaml"
		}
	}
	var file File
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		dec := yaml.NewDecoder(bytesReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&file); err != nil && !errors.Is(err, errEOF) {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		path = ""
	default:
		return nil, fmt.Errorf("read config: %w", err)
	}

	c := &Config{Path: path, Pools: map[string]int{}, Connections: map[string]map[string]any{}}
	c.DatabaseURL = first(f.DatabaseURL, getenv("PODFLOW_DATABASE_URL"), getenv("DATABASE_URL"), file.DatabaseURL)
	c.DagsFolder = first(f.DagsFolder, getenv("PODFLOW_DAGS_FOLDER"), file.DagsFolder, DefaultDagsFolder)
	c.HealthAddr = first(f.HealthAddr, getenv("PODFLOW_HEALTH_ADDR"), file.HealthAddr)
	if c.Workers, err = firstInt("workers", f.Workers, getenv("PODFLOW_WORKERS"), file.Workers, DefaultWorkers); err != nil {
		return nil, err
	}
	if c.Capacity, err = firstInt("capacity", f.Capacity, getenv("PODFLOW_CAPACITY"), file.Capacity, DefaultCapacity); err != nil {
		return nil, err
	}
	if c.MaxMapLength, err = firstInt("max_map_length", 0, getenv("PODFLOW_MAX_MAP_LENGTH"), file.MaxMapLength, DefaultMaxMapLength); err != nil {
		return nil, err
	}
	c.ZombieThreshold = f.ZombieThreshold
	if c.ZombieThreshold == 0 {
		s := first(getenv("PODFLOW_ZOMBIE_THRESHOLD"), file.ZombieThreshold)
		if s == "" {
			c.ZombieThreshold = DefaultZombieThreshold
		} else if c.ZombieThreshold, err = time.ParseDuration(s); err != nil {
			return nil, fmt.Errorf("zombie_threshold: %w", err)
		}
	}
	c.AllowedPaths = file.AllowedPaths
	if env := getenv("PODFLOW_ALLOWED_PATHS"); env != "" {
		c.AllowedPaths = filepath.SplitList(env)
	}
	c.DagsArePausedAtCreation = true
	if file.DagsArePausedAtCreation != nil {
		c.DagsArePausedAtCreation = *file.DagsArePausedAtCreation
	}
	if env := getenv("PODFLOW_DAGS_ARE_PAUSED_AT_CREATION"); env != "" {
		v, err := strconv.ParseBool(env)
		if err != nil {
			return nil, fmt.Errorf("PODFLOW_DAGS_ARE_PAUSED_AT_CREATION %q: want true or false", env)
		}
		c.DagsArePausedAtCreation = v
	}
	if err := c.loadAuth(file, getenv); err != nil {
		return nil, err
	}
	// Only the file's pools: the scheduler saves them to the pools table at
	// start, where default_pool already has DefaultPoolSlots, so a
	// default_pool changed through the API keeps its slots unless the file
	// names it.
	for name, slots := range file.Pools {
		c.Pools[name] = slots
	}
	for id, conn := range file.Connections {
		c.Connections[id] = conn
	}
	if err := c.loadSecrets(file, getenv); err != nil {
		return nil, err
	}
	if err := c.loadAlerts(file, getenv); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) loadSecrets(file File, getenv func(string) string) error {
	c.SecretKey = Secret(first(getenv("PODFLOW_SECRET_KEY"), file.SecretKey.Reveal()))
	if c.SecretKey == "" {
		if path := first(getenv("PODFLOW_SECRET_KEY_FILE"), file.SecretKeyFile); path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("secret key file (PODFLOW_SECRET_KEY_FILE or secret_key_file): %w", err)
			}
			c.SecretKey = Secret(strings.TrimSpace(string(b)))
		}
	}
	if b := file.SecretsBackend; b != nil && b.Kubernetes != nil {
		k := *b.Kubernetes
		if k.Namespace == "" {
			return fmt.Errorf("secrets_backend.kubernetes.namespace is required")
		}
		if k.CacheTTL != "" {
			d, err := time.ParseDuration(k.CacheTTL)
			if err != nil || d <= 0 {
				return fmt.Errorf("secrets_backend.kubernetes.cache_ttl %q: want a positive duration such as 30s", k.CacheTTL)
			}
			c.KubernetesSecretsTTL = d
		}
		c.KubernetesSecrets = &k
	}
	c.SensitiveVarConnNames = file.SensitiveVarConnNames
	if env := getenv("PODFLOW_SENSITIVE_VAR_CONN_NAMES"); env != "" {
		c.SensitiveVarConnNames = strings.Split(env, ",")
	}
	return nil
}

func (c *Config) loadAuth(file File, getenv func(string) string) error {
	c.Auth = first(getenv("PODFLOW_AUTH"), file.Auth, AuthBuiltin)
	if c.Auth != AuthBuiltin && c.Auth != AuthNone {
		return fmt.Errorf("auth %q (PODFLOW_AUTH or auth in podflow.yaml): want builtin or none", c.Auth)
	}
	c.AuthTokenTTL = DefaultAuthTokenTTL
	if s := first(getenv("PODFLOW_AUTH_TOKEN_TTL"), file.AuthTokenTTL); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("auth_token_ttl %q: want a positive duration such as 1h or 15m", s)
		}
		c.AuthTokenTTL = d
	}
	c.AuthSigningKey = Secret(first(getenv("PODFLOW_AUTH_SIGNING_KEY"), file.AuthSigningKey.Reveal()))
	if file.OIDC != nil {
		o := *file.OIDC
		if o.IssuerURL == "" || o.ClientID == "" {
			return fmt.Errorf("oidc: issuer_url and client_id are both required")
		}
		c.OIDC = &o
	}
	return nil
}

// Connection returns a named connection: PODFLOW_CONN_<ID> (JSON) wins over
// podflow.yaml's connections.
func (c *Config) Connection(id string, getenv func(string) string) (map[string]any, error) {
	if s := getenv("PODFLOW_CONN_" + envName(id)); s != "" {
		var m map[string]any
		if err := yamlJSON(s, &m); err != nil {
			return nil, fmt.Errorf("PODFLOW_CONN_%s: %w", envName(id), err)
		}
		return m, nil
	}
	if m, ok := c.Connections[id]; ok {
		return m, nil
	}
	return nil, nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func firstInt(key string, flag int, env string, file, def int) (int, error) {
	if flag != 0 {
		return flag, nil
	}
	if env != "" {
		n, err := strconv.Atoi(env)
		if err != nil {
			return 0, fmt.Errorf("PODFLOW_%s: want an integer, got %q", upper(key), env)
		}
		return n, nil
	}
	if file != 0 {
		return file, nil
	}
	return def, nil
}
