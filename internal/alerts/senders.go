package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"github.com/podflow/podflow/internal/config"
)

// Result is a receiver's answer to one attempt.
type Result struct {
	StatusCode int    // HTTP status or SMTP reply code; 0 when none came
	Response   string // the answer's body, trimmed
}

// Sender delivers a message to one notifier.
type Sender interface {
	Send(ctx context.Context, m Message) (Result, error)
	// Template is the notifier's message template ("" = the default).
	Template() string
	// Timeout bounds one attempt (0 = the delivery default).
	Timeout() time.Duration
}

// Header names of webhook deliveries.
const (
	HeaderDelivery  = "X-Podflow-Delivery"
	HeaderEvent     = "X-Podflow-Event"
	HeaderTimestamp = "X-Podflow-Timestamp"
	HeaderSignature = "X-Podflow-Signature"
)

// maxResponse bounds the receiver's answer kept with an attempt.
const maxResponse = 1024

// New builds the sender of a notifier from its podflow.yaml entry, reading
// its secrets now (an unset variable or unreadable file is an error naming
// the notifier).
func New(name string, n config.Notifier, getenv func(string) string) (Sender, error) {
	base := common{message: n.Message}
	if n.Timeout != "" {
		base.timeout, _ = time.ParseDuration(n.Timeout) // checked by config
	}
	what := "notifier " + name
	urlSecret, err := config.NotifierSecret(what+" url", n.URLEnv, n.URLFile, getenv)
	if err != nil {
		return nil, err
	}
	url := first(n.URL, urlSecret.Reveal())
	switch n.Type {
	case "webhook":
		key, err := config.NotifierSecret(what+" secret", n.SecretEnv, n.SecretFile, getenv)
		if err != nil {
			return nil, err
		}
		return &Webhook{common: base, URL: url, Secret: key, Headers: n.Headers}, nil
	case "slack":
		return &Slack{common: base, URL: config.Secret(url)}, nil
	case "email":
		pw, err := config.NotifierSecret(what+" password", n.PasswordEnv, n.PasswordFile, getenv)
		if err != nil {
			return nil, err
		}
		port := n.Port
		if port == 0 {
			port = map[string]int{"tls": 465, "none": 25}[n.TLS]
			if port == 0 {
				port = 587
			}
		}
		e := &Email{common: base, Host: n.Host, Port: port, TLS: first(n.TLS, "starttls"), Username: n.Username,
			Password: pw, From: n.From, To: n.To, Subject: n.Subject}
		if n.CAFile != "" {
			if e.RootCAs, err = loadRoots(n.CAFile); err != nil {
				return nil, fmt.Errorf("%s: ca_file: %w", what, err)
			}
		}
		return e, nil
	}
	return nil, fmt.Errorf("%s: type %q: want webhook, slack or email", what, n.Type)
}

// Senders builds every notifier of the config.
func Senders(cfg *config.Config, getenv func(string) string) (map[string]Sender, error) {
	out := map[string]Sender{}
	for _, name := range cfg.NotifierNames() {
		s, err := New(name, cfg.Notifiers[name], getenv)
		if err != nil {
			return nil, err
		}
		out[name] = s
	}
	return out, nil
}

type common struct {
	message string
	timeout time.Duration
}

func (c common) Template() string       { return c.message }
func (c common) Timeout() time.Duration { return c.timeout }

// Webhook POSTs the message as JSON. With a secret, X-Podflow-Signature is
// "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body) and
// X-Podflow-Timestamp the Unix seconds signed, so a receiver can check both
// origin and freshness.
type Webhook struct {
	common
	URL     string
	Secret  config.Secret
	Headers map[string]string
	Client  *http.Client // nil = a plain client; the attempt's context bounds it
}

// Sign returns the signature header value of body at timestamp ts.
func Sign(secret []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (w *Webhook) Send(ctx context.Context, m Message) (Result, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return Result{}, err
	}
	h := http.Header{}
	for k, v := range w.Headers {
		h.Set(k, v)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	h.Set(HeaderDelivery, m.ID)
	h.Set(HeaderEvent, m.Event)
	h.Set(HeaderTimestamp, ts)
	if w.Secret != "" {
		h.Set(HeaderSignature, Sign([]byte(w.Secret.Reveal()), ts, body))
	}
	return post(ctx, w.Client, w.URL, h, body)
}

// Slack posts an incoming-webhook message: a header, the DAG, task, state
// and try as fields, the error's start in a code block, and the link.
type Slack struct {
	common
	URL    config.Secret
	Client *http.Client
}

func (s *Slack) Send(ctx context.Context, m Message) (Result, error) {
	body, err := json.Marshal(SlackBlocks(m))
	if err != nil {
		return Result{}, err
	}
	h := http.Header{}
	h.Set(HeaderDelivery, m.ID)
	return post(ctx, s.Client, s.URL.Reveal(), h, body)
}

// SlackBlocks is the Slack message of m.
func SlackBlocks(m Message) map[string]any {
	text := func(s string) map[string]any { return map[string]any{"type": "mrkdwn", "text": s} }
	fields := []any{text("*DAG*\n" + m.DagID), text("*Run*\n" + m.RunID)}
	if m.TaskID != "" {
		fields = append(fields, text("*Task*\n"+m.TaskID), text(fmt.Sprintf("*Try*\n%d", m.TryNumber)))
	}
	fields = append(fields, text("*State*\n"+m.State))
	blocks := []any{
		map[string]any{"type": "header", "text": map[string]any{"type": "plain_text", "text": excerpt(m.Title, 150)}},
		map[string]any{"type": "section", "fields": fields},
	}
	if m.Text != "" && m.Text != m.Title {
		blocks = append(blocks, map[string]any{"type": "section", "text": text(excerpt(m.Text, 2900))})
	}
	if m.Error != "" {
		blocks = append(blocks, map[string]any{"type": "section", "text": text("```" + excerpt(m.Error, 2800) + "```")})
	}
	blocks = append(blocks, map[string]any{"type": "context", "elements": []any{text("<" + m.Link + "|Open the run in podflow>")}})
	return map[string]any{"text": m.Title, "blocks": blocks}
}

// post sends body; any 2xx is delivered.
func post(ctx context.Context, client *http.Client, url string, h http.Header, body []byte) (Result, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("build request: %w", err)
	}
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "podflow-alerts")
	resp, err := client.Do(req)
	if err != nil {
		// The URL may be the secret (Slack's is): errors are stored and
		// shown to viewers, so they name only its scheme and host.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			return Result{}, fmt.Errorf("POST %s: %w", redactURL(ue.URL), ue.Err)
		}
		return Result{}, err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	res := Result{StatusCode: resp.StatusCode, Response: strings.TrimSpace(string(answer))}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return res, fmt.Errorf("HTTP %d: %s", resp.StatusCode, excerpt(res.Response, 200))
	}
	return res, nil
}

// redactURL keeps a URL's scheme and host.
func redactURL(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil || u.Host == "" {
		return "(the notifier's URL)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}
