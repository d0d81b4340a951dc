package dag

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// RunID is the run id of a run of this type at this logical date, in
// Airflow's shape: scheduled__2026-01-01T00:00:00Z, with microseconds when
// the date has them. The scheduler, `podflow test` and dry-run all use it.
func RunID(runType string, logical time.Time) string {
	return runType + "__" + logical.Format("2006-01-02T15:04:05.999999Z07:00")
}

// Limits on a run's conf (dag_run.conf), checked when the run is created:
// a conf is untrusted input that every template of the run may print.
const (
	MaxConfBytes = 1 << 20 // 1 MiB of JSON
	MaxConfDepth = 32      // objects and arrays nested in each other
)

// ParseConf checks a run's conf — a JSON object of at most MaxConfBytes,
// nested at most MaxConfDepth deep — and decodes it (numbers keep their
// exact text). Empty input is an empty conf. Depth is checked on the token
// stream before anything is built, so a hostile conf costs no memory.
func ParseConf(raw []byte) (map[string]any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return map[string]any{}, nil
	}
	if len(raw) > MaxConfBytes {
		return nil, fmt.Errorf("conf is %d bytes, over the limit of %d", len(raw), MaxConfBytes)
	}
	if raw[0] != '{' {
		return nil, errors.New("conf must be a JSON object, e.g. {\"table\": \"events\"}")
	}
	if err := checkJSONDepth(raw, MaxConfDepth); err != nil {
		return nil, fmt.Errorf("conf: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var conf map[string]any
	if err := dec.Decode(&conf); err != nil {
		return nil, fmt.Errorf("conf is not a JSON object: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("conf is not a JSON object: more than one JSON value")
	}
	if conf == nil {
		conf = map[string]any{}
	}
	return conf, nil
}

// checkJSONDepth walks the JSON token stream and fails as soon as objects
// and arrays nest deeper than max.
func checkJSONDepth(raw []byte, max int) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not valid JSON: %w", err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			if depth > max {
				return fmt.Errorf("nested more than %d levels deep (at byte %d)", max, dec.InputOffset())
			}
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

// ConfOverride says which params a run's conf may override: every param
// (the default, as Airflow's dag_run_conf_overrides_params), none
// (`allow_conf_override: false`), or the listed ones
// (`allow_conf_override: [table, day]`).
type ConfOverride struct {
	Restricted bool     // false: every param may be overridden
	Keys       []string // the params that may be, when Restricted
}

// Allows reports whether conf may override param key.
func (o ConfOverride) Allows(key string) bool {
	if !o.Restricted {
		return true
	}
	for _, k := range o.Keys {
		if k == key {
			return true
		}
	}
	return false
}

// CheckConf refuses a conf that would override a param the DAG does not let
// a conf override, naming the keys. Conf keys that are not params are
// always allowed: templates read them as dag_run.conf.
func (d *DAG) CheckConf(conf map[string]any) error {
	var refused []string
	for k := range conf {
		if _, isParam := d.Params[k]; isParam && !d.ConfOverride.Allows(k) {
			refused = append(refused, k)
		}
	}
	if len(refused) == 0 {
		return nil
	}
	sort.Strings(refused)
	return fmt.Errorf("DAG %s does not let a conf override param %s (allow_conf_override in %s)",
		d.ID, strings.Join(refused, ", "), d.Path)
}

// RunParams are the params a run's templates see: the DAG's params with
// conf overriding them. Unrestricted, every conf key becomes a param, as
// Airflow; restricted, only the allowed params change and other conf keys
// stay in dag_run.conf alone.
func (d *DAG) RunParams(conf map[string]any) map[string]any {
	params := make(map[string]any, len(d.Params)+len(conf))
	for k, v := range d.Params {
		params[k] = v
	}
	for k, v := range conf {
		if _, isParam := d.Params[k]; d.ConfOverride.Restricted && (!isParam || !d.ConfOverride.Allows(k)) {
			continue
		}
		params[k] = v
	}
	return params
}
