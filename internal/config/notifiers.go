package config

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// Notifier is one entry of podflow.yaml's notifiers: where an alert goes.
// Secrets (the webhook's signing key, Slack's URL, the SMTP password) come
// from an environment variable or a file, never from the YAML itself.
type Notifier struct {
	Type string `yaml:"type"` // webhook | slack | email

	// webhook, slack: the URL (slack: url_env or url_file only, its URL is
	// the secret).
	URL     string `yaml:"url"`
	URLEnv  string `yaml:"url_env"`
	URLFile string `yaml:"url_file"`
	// webhook: the HMAC-SHA256 key and extra headers.
	SecretEnv  string            `yaml:"secret_env"`
	SecretFile string            `yaml:"secret_file"`
	Headers    map[string]string `yaml:"headers"`

	// email.
	Host         string   `yaml:"host"`
	Port         int      `yaml:"port"`
	TLS          string   `yaml:"tls"`     // starttls (default) | tls | none
	CAFile       string   `yaml:"ca_file"` // PEM roots to trust besides the system's (an internal relay)
	Username     string   `yaml:"username"`
	PasswordEnv  string   `yaml:"password_env"`
	PasswordFile string   `yaml:"password_file"`
	From         string   `yaml:"from"`
	To           []string `yaml:"to"`
	Subject      string   `yaml:"subject"` // Jinja

	// Message is the Jinja template of the text ("" = a default per event).
	Message string `yaml:"message"`
	// Timeout bounds one delivery attempt (default alerts.timeout).
	Timeout string `yaml:"timeout"`
}

// AlertsFile is podflow.yaml's alerts block.
type AlertsFile struct {
	BaseURL     string `yaml:"base_url"`      // the web UI, for links in messages
	Backoff     string `yaml:"backoff"`       // first retry delay, doubled each time
	MaxBackoff  string `yaml:"max_backoff"`   // cap of the delay
	GiveUpAfter string `yaml:"give_up_after"` // an alert not delivered by then is marked failed
	Timeout     string `yaml:"timeout"`       // one attempt
}

// Alerts are the resolved delivery settings.
type Alerts struct {
	BaseURL     string
	Backoff     time.Duration
	MaxBackoff  time.Duration
	GiveUpAfter time.Duration
	Timeout     time.Duration
}

// Alert delivery defaults.
const (
	DefaultAlertBackoff     = 10 * time.Second
	DefaultAlertMaxBackoff  = 10 * time.Minute
	DefaultAlertGiveUpAfter = 24 * time.Hour
	DefaultAlertTimeout     = 10 * time.Second
	DefaultAlertBaseURL     = "http://localhost:8080"
)

func (c *Config) loadAlerts(file File, getenv func(string) string) error {
	a := file.Alerts
	c.Alerts.BaseURL = strings.TrimRight(first(getenv("PODFLOW_ALERTS_BASE_URL"), a.BaseURL, DefaultAlertBaseURL), "/")
	for _, d := range []struct {
		key, env, file string
		def            time.Duration
		out            *time.Duration
	}{
		{"alerts.backoff", "PODFLOW_ALERTS_BACKOFF", a.Backoff, DefaultAlertBackoff, &c.Alerts.Backoff},
		{"alerts.max_backoff", "PODFLOW_ALERTS_MAX_BACKOFF", a.MaxBackoff, DefaultAlertMaxBackoff, &c.Alerts.MaxBackoff},
		{"alerts.give_up_after", "PODFLOW_ALERTS_GIVE_UP_AFTER", a.GiveUpAfter, DefaultAlertGiveUpAfter, &c.Alerts.GiveUpAfter},
		{"alerts.timeout", "PODFLOW_ALERTS_TIMEOUT", a.Timeout, DefaultAlertTimeout, &c.Alerts.Timeout},
	} {
		*d.out = d.def
		if s := first(getenv(d.env), d.file); s != "" {
			v, err := time.ParseDuration(s)
			if err != nil || v <= 0 {
				return fmt.Errorf("%s %q (%s or podflow.yaml): want a positive duration such as 30s", d.key, s, d.env)
			}
			*d.out = v
		}
	}
	c.Notifiers = map[string]Notifier{}
	for name, n := range file.Notifiers {
		if err := n.check(); err != nil {
			return fmt.Errorf("notifiers.%s: %w", name, err)
		}
		c.Notifiers[name] = n
	}
	return nil
}

// NotifierNames lists the declared notifiers, sorted.
func (c *Config) NotifierNames() []string {
	names := make([]string, 0, len(c.Notifiers))
	for n := range c.Notifiers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// check validates a notifier's fields for its type.
func (n Notifier) check() error {
	if n.Timeout != "" {
		if d, err := time.ParseDuration(n.Timeout); err != nil || d <= 0 {
			return fmt.Errorf("timeout %q: want a positive duration such as 10s", n.Timeout)
		}
	}
	switch n.Type {
	case "webhook":
		if (n.URL == "") == (n.URLEnv == "" && n.URLFile == "") {
			return fmt.Errorf("webhook: give url (or url_env / url_file)")
		}
		if n.SecretEnv != "" && n.SecretFile != "" {
			return fmt.Errorf("webhook: give secret_env or secret_file, not both")
		}
	case "slack":
		if n.URL != "" {
			return fmt.Errorf("slack: the incoming-webhook URL is a secret: give url_env or url_file, not url")
		}
		if n.URLEnv == "" && n.URLFile == "" {
			return fmt.Errorf("slack: give url_env or url_file (the incoming-webhook URL)")
		}
	case "email":
		if n.Host == "" || n.From == "" || len(n.To) == 0 {
			return fmt.Errorf("email: host, from and to are required")
		}
		switch n.TLS {
		case "", "starttls", "tls", "none":
		default:
			return fmt.Errorf("email: tls %q: want starttls, tls or none", n.TLS)
		}
		if n.PasswordEnv != "" && n.PasswordFile != "" {
			return fmt.Errorf("email: give password_env or password_file, not both")
		}
	case "":
		return fmt.Errorf("type: required (webhook, slack or email)")
	default:
		return fmt.Errorf("type %q: want webhook, slack or email", n.Type)
	}
	return nil
}

// NotifierSecret reads a secret given as an environment variable or a
// file ("" when neither is set); what names it is for messages.
func NotifierSecret(what, env, file string, getenv func(string) string) (Secret, error) {
	switch {
	case env != "":
		v := getenv(env)
		if v == "" {
			return "", fmt.Errorf("%s: environment variable %s is not set", what, env)
		}
		return Secret(v), nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		return Secret(strings.TrimSpace(string(b))), nil
	}
	return "", nil
}
