package dag

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Callback events, Airflow's callback names without on_ and _callback.
// The store keys alert rules on them and on the state a transition reaches.
const (
	EventFailure  = "failure"  // task: failed (every path); run: failed
	EventRetry    = "retry"    // task: up_for_retry
	EventSuccess  = "success"  // task: success; run: success
	EventExecute  = "execute"  // task: a try starts running
	EventSkipped  = "skipped"  // task: skipped (not upstream_failed)
	EventDeadline = "deadline" // run: not finished by its deadline
)

// taskCallbackKeys are the task-level callback keys (also in default_args),
// dagCallbackKeys the DAG-level ones, for the run.
var (
	taskCallbackKeys = map[string]string{
		"on_failure_callback": EventFailure, "on_retry_callback": EventRetry, "on_success_callback": EventSuccess,
		"on_execute_callback": EventExecute, "on_skipped_callback": EventSkipped,
	}
	dagCallbackKeys = map[string]string{"on_failure_callback": EventFailure, "on_success_callback": EventSuccess}
)

// Callback sends one notifier (a name from podflow.yaml's notifiers) with
// an optional message template (Jinja, "" = the notifier's default).
type Callback struct {
	Notifier     string
	Message      string
	Line, Column int // where the notifier is named, for validate
}

// Callbacks maps an event to the notifiers it sends.
type Callbacks map[string][]Callback

// with returns a copy of c with event's list replaced: tasks start as a
// shallow copy of default_args and must not change each other's maps.
func (c Callbacks) with(event string, list []Callback) Callbacks {
	out := make(Callbacks, len(c)+1)
	for k, v := range c {
		out[k] = v
	}
	out[event] = list
	return out
}

// Deadline is a DAG's deadline alert: when a run has not finished by its
// reference time plus Interval, Notify fire once.
type Deadline struct {
	// Reference is logical_date, queued_at or fixed.
	Reference string
	// Fixed is the time of day (Reference fixed): the deadline is the first
	// such moment, in FixedZone, at or after the run's data interval end.
	FixedTime string // "HH:MM"
	FixedZone string // IANA name
	Interval  time.Duration
	Notify    []Callback
}

// callbackList reads a callback key's value: a notifier name, a list of
// names, or a list mixing names and {notifier: NAME, message: "…"}.
func (f *fileParser) callbackList(key string, n *yaml.Node) ([]Callback, bool) {
	r := resolve(n)
	if isNull(r) {
		return nil, true
	}
	items := []*yaml.Node{r}
	if r.Kind == yaml.SequenceNode {
		items = r.Content
	}
	var out []Callback
	ok := true
	for i, item := range items {
		it := resolve(item)
		where := key
		if r.Kind == yaml.SequenceNode {
			where = fmt.Sprintf("%s[%d]", key, i)
		}
		c, good := f.callback(where, it)
		if good {
			out = append(out, c)
		}
		ok = ok && good
	}
	return out, ok
}

// callback reads one entry of a callback list.
func (f *fileParser) callback(where string, n *yaml.Node) (Callback, bool) {
	if n != nil && n.Kind == yaml.MappingNode {
		var c Callback
		for _, e := range f.entries(n) {
			switch e.name() {
			case "notifier":
				c.Notifier, _ = f.str(where+".notifier", e.value)
				c.Line, c.Column = e.value.Line, e.value.Column
			case "message":
				c.Message, _ = f.str(where+".message", e.value)
				if _, err := f.p.templates.Compile(c.Message); err != nil && c.Message != "" {
					f.errorf(e.value, "%s.message: template does not parse: %v", where, err)
					return c, false
				}
			default:
				f.errorf(e.key, "%s: unknown key %s in a callback%s", where, e.name(), didYouMean(e.name(), []string{"notifier", "message"}))
				return c, false
			}
		}
		if c.Notifier == "" {
			f.errorf(n, "%s: notifier: required key is missing", where)
			return c, false
		}
		return c, true
	}
	if !isText(n) || n.Value == "" {
		f.wrongType(where, n, "a notifier name or {notifier: NAME, message: TEXT}")
		return Callback{}, false
	}
	return Callback{Notifier: n.Value, Line: n.Line, Column: n.Column}, true
}

// dagAlerts reads the DAG-level callbacks and the deadline.
func (f *fileParser) dagAlerts(d *DAG, fields map[string]entry) {
	for key, event := range dagCallbackKeys {
		e, ok := fields[key]
		if !ok {
			continue
		}
		if list, ok := f.callbackList(key, e.value); ok && len(list) > 0 {
			d.Callbacks = d.Callbacks.with(event, list)
		}
	}
	if e, ok := fields["deadline"]; ok && !isNull(e.value) {
		d.Deadline = f.deadline(e.value)
	}
}

// fixedTime is deadline.fixed: "HH:MM Area/City" (or UTC).
var fixedTime = regexp.MustCompile(`^([01]\d|2[0-3]):([0-5]\d)(?:\s+(\S+))?$`)

// deadline reads deadline: {reference, fixed, interval, notify}.
func (f *fileParser) deadline(n *yaml.Node) *Deadline {
	m := resolve(n)
	if m == nil || m.Kind != yaml.MappingNode {
		f.wrongType("deadline", n, "a mapping with reference (or fixed), interval and notify")
		return nil
	}
	dl := &Deadline{}
	var ref, notify *yaml.Node
	good := true
	for _, e := range f.entries(m) {
		switch e.name() {
		case "reference":
			ref = e.value
			s, ok := f.str("deadline.reference", e.value)
			switch {
			case !ok:
				good = false
			case s == "logical_date" || s == "queued_at":
				dl.Reference = s
			case s == "fixed":
				f.errorf(e.value, `deadline.reference: write fixed as its own key, e.g. fixed: "07:00 Europe/Berlin"`)
				good = false
			default:
				f.errorf(e.value, "deadline.reference: wants logical_date, queued_at or fixed: \"HH:MM TZ\", got %s", quoteShort(s))
				good = false
			}
		case "fixed":
			s, ok := f.str("deadline.fixed", e.value)
			mt := fixedTime.FindStringSubmatch(strings.TrimSpace(s))
			if !ok || mt == nil {
				if ok {
					f.errorf(e.value, `deadline.fixed: wants "HH:MM" and a time zone, e.g. "07:00 Europe/Berlin", got %s`, quoteShort(s))
				}
				good = false
				continue
			}
			zone := mt[3]
			if zone == "" {
				zone = "UTC"
			}
			if _, err := f.p.location(zone); err != nil {
				f.errorf(e.value, "deadline.fixed: %v", err)
				good = false
				continue
			}
			dl.Reference, dl.FixedTime, dl.FixedZone = "fixed", mt[1]+":"+mt[2], zone
		case "interval":
			v, ok := f.duration("deadline.interval", e.value)
			good = good && ok
			dl.Interval = v
		case "notify":
			notify = e.value
			list, ok := f.callbackList("deadline.notify", e.value)
			good = good && ok
			dl.Notify = list
		default:
			f.errorf(e.key, "deadline: unknown key %s%s", e.name(), didYouMean(e.name(), []string{"reference", "fixed", "interval", "notify"}))
			good = false
		}
	}
	if ref != nil && dl.FixedTime != "" {
		f.errorf(ref, "deadline: give either reference or fixed, not both")
		good = false
	}
	if dl.Reference == "" && good {
		f.errorf(m, `deadline: reference: required (logical_date or queued_at), or fixed: "HH:MM TZ"`)
		good = false
	}
	if dl.Reference != "fixed" && dl.Interval <= 0 && good {
		f.errorf(m, "deadline: interval: wants a duration after the reference, e.g. 2h")
		good = false
	}
	if notify == nil && good {
		f.errorf(m, "deadline: notify: required (a list of notifier names)")
		good = false
	}
	if !good {
		return nil
	}
	return dl
}

// CheckNotifiers reports every notifier a DAG names that known does not
// hold, at the line naming it.
func (d *DAG) CheckNotifiers(known []string) []*Error {
	var all []Callback
	for _, list := range d.allCallbackLists() {
		all = append(all, list...)
	}
	sort.SliceStable(all, func(i, j int) bool {
		return all[i].Line < all[j].Line || (all[i].Line == all[j].Line && all[i].Column < all[j].Column)
	})
	var errs []*Error
	seen := map[[2]int]bool{} // default_args callbacks are copied into every task
	for _, c := range all {
		if pos := [2]int{c.Line, c.Column}; !seen[pos] {
			seen[pos] = true
			if !contains(known, c.Notifier) {
				hint := didYouMean(c.Notifier, known)
				if hint == "" && len(known) == 0 {
					hint = "; podflow.yaml declares no notifiers"
				} else if hint == "" {
					hint = "; declared: " + strings.Join(known, ", ")
				}
				errs = append(errs, &Error{Path: d.Path, Line: c.Line, Column: c.Column,
					Msg: fmt.Sprintf("notifier %q is not declared in podflow.yaml's notifiers%s", c.Notifier, hint)})
			}
		}
	}
	return errs
}

// allCallbackLists lists every callback list of the DAG and its tasks.
func (d *DAG) allCallbackLists() [][]Callback {
	var out [][]Callback
	for _, l := range d.Callbacks {
		out = append(out, l)
	}
	for _, t := range d.Tasks {
		for _, l := range t.Callbacks {
			out = append(out, l)
		}
	}
	if d.Deadline != nil {
		out = append(out, d.Deadline.Notify)
	}
	return out
}
