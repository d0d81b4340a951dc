package secrets

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Connection is Airflow's connection model.
type Connection struct {
	ConnID      string `json:"conn_id"`
	Type        string `json:"conn_type"`
	Description string `json:"description,omitempty"`
	Host        string `json:"host,omitempty"`
	Schema      string `json:"schema,omitempty"`
	Login       string `json:"login,omitempty"`
	Password    string `json:"password,omitempty"`
	Port        int    `json:"port,omitempty"`
	// Extra is a JSON object as text ("" for none), as Airflow keeps it.
	Extra string `json:"extra,omitempty"`
}

// ExtraDejson is Extra decoded (Airflow's extra_dejson); empty when Extra
// is empty or not a JSON object.
func (c *Connection) ExtraDejson() map[string]any {
	m := map[string]any{}
	if strings.TrimSpace(c.Extra) != "" {
		_ = json.Unmarshal([]byte(c.Extra), &m)
	}
	return m
}

// CheckExtra refuses an extra that is not a JSON object.
func (c *Connection) CheckExtra() error {
	if strings.TrimSpace(c.Extra) == "" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(c.Extra), &m); err != nil {
		return fmt.Errorf("connection %s: extra must be a JSON object: %w", c.ConnID, err)
	}
	return nil
}

// Map is the connection as operators read connections (the keys of
// podflow.yaml's connections:), extra as its JSON text.
func (c *Connection) Map() map[string]any {
	m := map[string]any{"conn_type": c.Type}
	for k, v := range map[string]string{"host": c.Host, "schema": c.Schema, "login": c.Login, "password": c.Password, "extra": c.Extra, "description": c.Description} {
		if v != "" {
			m[k] = v
		}
	}
	if c.Port != 0 {
		m["port"] = c.Port
	}
	return m
}

// ConnectionFromMap reads a connection written as a mapping (podflow.yaml,
// PODFLOW_CONN_<ID> as JSON). Keys other than the model's (e.g. a Kubernetes
// connection's kube_config_path at top level) join the extra.
func ConnectionFromMap(id string, raw map[string]any) (*Connection, error) {
	c := &Connection{ConnID: id}
	extra := map[string]any{}
	str := func(v any) string {
		if v == nil {
			return ""
		}
		return fmt.Sprint(v)
	}
	for k, v := range raw {
		switch k {
		case "conn_type":
			c.Type = str(v)
		case "host":
			c.Host = str(v)
		case "schema":
			c.Schema = str(v)
		case "login":
			c.Login = str(v)
		case "password":
			c.Password = str(v)
		case "description":
			c.Description = str(v)
		case "port":
			p, err := strconv.Atoi(str(v))
			if err != nil {
				return nil, fmt.Errorf("connection %s: port %v: want a number", id, v)
			}
			c.Port = p
		case "extra":
			switch e := v.(type) {
			case string:
				if strings.TrimSpace(e) != "" {
					var m map[string]any
					if err := json.Unmarshal([]byte(e), &m); err != nil {
						return nil, fmt.Errorf("connection %s: extra must be a JSON object: %w", id, err)
					}
					for k, v := range m {
						extra[k] = v
					}
				}
			case map[string]any:
				for k, v := range e {
					extra[k] = v
				}
			case nil:
			default:
				return nil, fmt.Errorf("connection %s: extra must be a mapping, got %T", id, v)
			}
		default:
			extra[k] = v
		}
	}
	if len(extra) > 0 {
		b, err := json.Marshal(extra)
		if err != nil {
			return nil, fmt.Errorf("connection %s: extra: %w", id, err)
		}
		c.Extra = string(b)
	}
	return c, nil
}

// ParseURI reads a connection in Airflow's URI form:
//
//	postgres://user:pa%40ss@host:5432/db?sslmode=require
//
// The scheme is the type ("-" read as "_"), user info and path are
// percent-decoded, query parameters become the extra (or __extra__ holds
// the extra as JSON).
func ParseURI(id, uri string) (*Connection, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("connection %s: URI: %w", id, err)
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("connection %s: URI %q has no scheme (want e.g. postgres://user:pass@host:5432/db)", id, redactURI(uri))
	}
	c := &Connection{ConnID: id, Type: strings.ReplaceAll(u.Scheme, "-", "_")}
	c.Host = u.Hostname()
	if p := u.Port(); p != "" {
		if c.Port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("connection %s: port %q: want a number", id, p)
		}
	}
	if u.User != nil {
		c.Login = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	c.Schema = strings.TrimPrefix(u.Path, "/")
	q := u.Query()
	if raw := q.Get("__extra__"); raw != "" {
		c.Extra = raw
		if err := c.CheckExtra(); err != nil {
			return nil, err
		}
	} else if len(q) > 0 {
		m := map[string]any{}
		for k, vs := range q {
			if len(vs) == 1 {
				m[k] = vs[0]
			} else {
				l := make([]any, len(vs))
				for i, v := range vs {
					l[i] = v
				}
				m[k] = l
			}
		}
		b, _ := json.Marshal(m)
		c.Extra = string(b)
	}
	return c, nil
}

// URI writes the connection in Airflow's URI form; an extra whose values
// are all strings goes into query parameters, any other as __extra__.
func (c *Connection) URI() string {
	var b strings.Builder
	b.WriteString(strings.ReplaceAll(c.Type, "_", "-"))
	b.WriteString("://")
	if c.Login != "" || c.Password != "" {
		b.WriteString(url.QueryEscape(c.Login))
		if c.Password != "" {
			b.WriteString(":" + url.QueryEscape(c.Password))
		}
		b.WriteString("@")
	}
	b.WriteString(url.QueryEscape(c.Host))
	if c.Port != 0 {
		b.WriteString(":" + strconv.Itoa(c.Port))
	}
	if c.Schema != "" {
		b.WriteString("/" + url.QueryEscape(c.Schema))
	}
	if extra := c.ExtraDejson(); len(extra) > 0 {
		q := url.Values{}
		flat := true
		keys := make([]string, 0, len(extra))
		for k, v := range extra {
			if _, ok := v.(string); !ok {
				flat = false
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if flat {
			for _, k := range keys {
				q.Set(k, extra[k].(string))
			}
		} else {
			q.Set("__extra__", c.Extra)
		}
		if c.Schema == "" {
			b.WriteString("/")
		}
		b.WriteString("?" + q.Encode())
	}
	return b.String()
}

// redactURI hides a URI's password in error messages.
func redactURI(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), Masked)
			return u.String()
		}
	}
	return s
}
