package alerts

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/podflow/podflow/internal/config"
)

// Email sends the message over SMTP as multipart/alternative (plain text
// and HTML). It uses net/smtp: STARTTLS, implicit TLS (a tls.Conn handed to
// smtp.NewClient) and PLAIN auth are all there, PlainAuth refuses to send a
// password over an unencrypted connection to anything but localhost, and
// the MIME parts are a few lines of mime/multipart — a mail library would
// add a dependency for one fixed message shape.
type Email struct {
	common
	Host     string
	Port     int
	TLS      string // starttls | tls | none
	Username string
	Password config.Secret
	From     string
	To       []string
	Subject  string         // Jinja; "" = "[podflow] " + title
	RootCAs  *x509.CertPool // nil = the system's
}

func loadRoots(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

func (e *Email) Send(ctx context.Context, m Message) (Result, error) {
	from, err := mail.ParseAddress(e.From)
	if err != nil {
		return Result{}, fmt.Errorf("from %q: %w", e.From, err)
	}
	subject := "[podflow] " + m.Title
	if e.Subject != "" {
		if subject, err = m.render(ctx, e.Subject); err != nil {
			return Result{}, fmt.Errorf("subject: %w", err)
		}
	}
	body, err := EmailBody(m, from.String(), e.To, subject)
	if err != nil {
		return Result{}, err
	}
	c, err := e.dial(ctx)
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	if err := e.deliver(c, from.Address, body); err != nil {
		return smtpResult(err), err
	}
	return Result{StatusCode: 250, Response: fmt.Sprintf("accepted for %d recipient(s)", len(e.To))}, nil
}

// dial connects, with TLS from the start (tls) or after STARTTLS (starttls,
// required: a server that does not offer it is an error, not a downgrade),
// and authenticates.
func (e *Email) dial(ctx context.Context) (*smtp.Client, error) {
	addr := net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	tlsCfg := &tls.Config{ServerName: e.Host, RootCAs: e.RootCAs, MinVersion: tls.VersionTLS12}
	if e.TLS == "tls" {
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS with %s: %w", addr, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, e.Host)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("SMTP greeting of %s: %w", addr, err)
	}
	if e.TLS == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			c.Close()
			return nil, fmt.Errorf("%s does not offer STARTTLS (set tls: tls for implicit TLS, or none)", addr)
		}
		if err := c.StartTLS(tlsCfg); err != nil {
			c.Close()
			return nil, fmt.Errorf("STARTTLS with %s: %w", addr, err)
		}
	}
	if e.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.Username, e.Password.Reveal(), e.Host)); err != nil {
			c.Close()
			return nil, fmt.Errorf("SMTP auth as %s: %w", e.Username, err)
		}
	}
	return c, nil
}

func (e *Email) deliver(c *smtp.Client, from string, body []byte) error {
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, to := range e.To {
		addr, err := mail.ParseAddress(to)
		if err != nil {
			return fmt.Errorf("to %q: %w", to, err)
		}
		if err := c.Rcpt(addr.Address); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", addr.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	return c.Quit()
}

// smtpResult keeps the server's reply code of a refusal.
func smtpResult(err error) Result {
	var te *textproto.Error
	if errors.As(err, &te) {
		return Result{StatusCode: te.Code, Response: te.Msg}
	}
	return Result{}
}

var emailHTML = template.Must(template.New("email").Parse(`<!doctype html>
<html><body style="font-family: sans-serif">
<h2>{{ .Title }}</h2>
<table cellpadding="4">
<tr><th align="left">DAG</th><td>{{ .DagID }}</td></tr>
<tr><th align="left">Run</th><td>{{ .RunID }}</td></tr>
{{ if .TaskID }}<tr><th align="left">Task</th><td>{{ .TaskID }} (try {{ .TryNumber }})</td></tr>{{ end }}
<tr><th align="left">State</th><td>{{ .State }}</td></tr>
<tr><th align="left">Logical date</th><td>{{ .LogicalDate.Format "2006-01-02T15:04:05Z07:00" }}</td></tr>
</table>
{{ if .Error }}<pre style="background:#f6f6f6;padding:8px">{{ .Error }}</pre>{{ end }}
<pre>{{ .Text }}</pre>
<p><a href="{{ .Link }}">Open the run in podflow</a></p>
</body></html>
`))

// EmailBody is the RFC 5322 message: headers, then multipart/alternative
// with a text/plain and a text/html part, both quoted-printable.
func EmailBody(m Message, from string, to []string, subject string) ([]byte, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	hdr := func(k, v string) { fmt.Fprintf(&buf, "%s: %s\r\n", k, v) }
	hdr("From", from)
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", subject))
	hdr("Date", time.Now().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+m.ID+"@podflow>")
	hdr(HeaderDelivery, m.ID)
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "multipart/alternative; boundary="+mw.Boundary())
	buf.WriteString("\r\n")
	var html bytes.Buffer
	if err := emailHTML.Execute(&html, m); err != nil {
		return nil, err
	}
	for _, part := range []struct{ typ, body string }{{"text/plain", m.Text}, {"text/html", html.String()}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write([]byte(part.body)); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
