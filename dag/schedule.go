package dag

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // timezones must resolve the same on every machine, even without /usr/share/zoneinfo

	"github.com/robfig/cron/v3"
)

// ScheduleOnce is the preset for a DAG that runs once, at its start_date.
const ScheduleOnce = "@once"

// MaxCatchupRuns caps how many logical dates CatchupWindow returns at a
// time; the caller creates them and asks again from the last one.
const MaxCatchupRuns = 1000

// cronPresets are the schedule presets with the cron expression each
// stands for (@once has none).
var cronPresets = map[string]string{
	"@hourly":    "0 * * * *",
	"@daily":     "0 0 * * *",
	"@weekly":    "0 0 * * 0",
	"@monthly":   "0 0 1 * *",
	"@quarterly": "0 0 1 */3 *",
	"@yearly":    "0 0 1 1 *",
}

// CronPresets returns the schedule presets and their cron expressions
// (a fresh map; @once is not in it as it has no expression).
func CronPresets() map[string]string {
	out := make(map[string]string, len(cronPresets))
	for k, v := range cronPresets {
		out[k] = v
	}
	return out
}

// cronParser reads standard five-field cron expressions (minute hour
// day-of-month month day-of-week); descriptors are handled as presets.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// Schedule is a parsed schedule in a timezone.
//
// Times are found on the wall clock of the timezone, so DST changes do not
// move or repeat runs: a run whose wall time falls in the hour skipped in
// spring runs as the clock jumps past it, by as much as it jumped (02:30 →
// 03:30); a run at a wall time that happens twice in autumn runs once, the
// first time. Schedules that fire every hour follow elapsed time instead
// (every hour of the day, including the repeated one, runs).
type Schedule struct {
	Expr string // as written in the DAG file
	Once bool   // @once

	loc       *time.Location
	spec      *cron.SpecSchedule // evaluated on the wall clock, expressed as UTC
	everyHour bool
}

// ParseSchedule parses a cron expression or preset for timezone loc (UTC
// when nil).
func ParseSchedule(expr string, loc *time.Location) (*Schedule, error) {
	if loc == nil {
		loc = time.UTC
	}
	expr = strings.TrimSpace(expr)
	s := &Schedule{Expr: expr, loc: loc}
	if expr == "" {
		return nil, fmt.Errorf("empty schedule; use null (or leave it out) for a DAG triggered only by hand")
	}
	if expr == ScheduleOnce {
		s.Once = true
		return s, nil
	}
	cronExpr := expr
	if strings.HasPrefix(expr, "@") {
		preset, ok := cronPresets[expr]
		if !ok {
			names := append(sortedKeys(cronPresets), ScheduleOnce)
			hint := didYouMean(expr, names)
			if hint == "" {
				hint = "; use a cron expression or one of " + strings.Join(names, ", ")
			}
			return nil, fmt.Errorf("unknown preset %s%s", quoteShort(expr), hint)
		}
		cronExpr = preset
	}
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, fmt.Errorf("%s: set the DAG's timezone key instead of a TZ= prefix", quoteShort(expr))
	}
	switch strings.ToLower(expr) {
	case "none", "null", "manual":
		return nil, fmt.Errorf("%s is not a cron expression; use null (or leave it out) for a DAG triggered only by hand", quoteShort(expr))
	}
	parsed, err := cronParser.Parse(cronExpr)
	if err != nil {
		return nil, fmt.Errorf("invalid cron expression %s: %v (wants 5 fields: minute hour day-of-month month day-of-week, or a preset such as @daily)", quoteShort(expr), err)
	}
	spec, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("invalid cron expression %s", quoteShort(expr))
	}
	wall := *spec
	wall.Location = time.UTC
	s.spec = &wall
	const allHours = 1<<24 - 1
	s.everyHour = spec.Hour&allHours == allHours
	if s.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("cron expression %s never fires", quoteShort(expr))
	}
	return s, nil
}

// Location is the schedule's timezone.
func (s *Schedule) Location() *time.Location { return s.loc }

// Next returns the first tick strictly after t, or the zero time when
// there is none within five years (or the schedule is @once).
func (s *Schedule) Next(t time.Time) time.Time {
	if s.spec == nil {
		return time.Time{}
	}
	if s.everyHour {
		abs := *s.spec
		abs.Location = s.loc
		return abs.Next(t.In(s.loc))
	}
	w := wallAsUTC(t.In(s.loc))
	for i := 0; i < 1000; i++ {
		w = s.spec.Next(w)
		if w.IsZero() {
			return time.Time{}
		}
		if at := fromWall(w, s.loc); at.After(t) {
			return at
		}
	}
	return time.Time{}
}

// Prev returns the latest tick at or before t, or the zero time.
func (s *Schedule) Prev(t time.Time) time.Time {
	for _, back := range []time.Duration{time.Minute, time.Hour, 25 * time.Hour, 8 * 24 * time.Hour,
		32 * 24 * time.Hour, 93 * 24 * time.Hour, 367 * 24 * time.Hour, 4 * 366 * 24 * time.Hour} {
		x := s.Next(t.Add(-back))
		if x.IsZero() || x.After(t) {
			continue
		}
		for {
			y := s.Next(x)
			if y.IsZero() || y.After(t) {
				return x
			}
			x = y
		}
	}
	return time.Time{}
}

// wallAsUTC keeps t's wall clock reading and calls it UTC.
func wallAsUTC(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// fromWall turns a wall clock reading (expressed as UTC) into an instant in
// loc: the first one when the reading happens twice, and the reading moved
// forward by the jump when it never happens.
func fromWall(w time.Time, loc *time.Location) time.Time {
	_, before := w.Add(-48 * time.Hour).In(loc).Zone()
	_, after := w.Add(48 * time.Hour).In(loc).Zone()
	early := w.Add(-time.Duration(before) * time.Second).In(loc)
	if sameWall(early, w) {
		return early
	}
	late := w.Add(-time.Duration(after) * time.Second).In(loc)
	if sameWall(late, w) {
		return late
	}
	return early
}

func sameWall(t, w time.Time) bool {
	y1, m1, d1 := t.Date()
	y2, m2, d2 := w.Date()
	return y1 == y2 && m1 == m2 && d1 == d2 && t.Hour() == w.Hour() && t.Minute() == w.Minute() && t.Second() == w.Second()
}

// ParsedSchedule returns the DAG's parsed schedule, nil for a DAG
// triggered only by hand.
func (d *DAG) ParsedSchedule() (*Schedule, error) {
	if d.Schedule == "" {
		return nil, nil
	}
	s, err := ParseSchedule(d.Schedule, d.location())
	if err != nil {
		return nil, fmt.Errorf("dag %s: schedule: %w", d.ID, err)
	}
	return s, nil
}

func (d *DAG) location() *time.Location {
	if d.Timezone == nil {
		return time.UTC
	}
	return d.Timezone
}

// schedule is ParsedSchedule for code that treats a bad schedule (only
// possible on a DAG built by hand) as manual.
func (d *DAG) schedule() *Schedule {
	s, err := d.ParsedSchedule()
	if err != nil {
		return nil
	}
	return s
}

// NextRun returns the first logical date strictly after `after` that the
// schedule produces within start_date and end_date. ok is false for DAGs
// triggered by hand, after the last run of @once or past end_date.
func (d *DAG) NextRun(after time.Time) (logicalDate time.Time, ok bool) {
	s := d.schedule()
	switch {
	case s == nil:
		return time.Time{}, false
	case s.Once:
		if !d.StartDate.IsZero() && after.Before(d.StartDate) && d.withinEnd(d.StartDate) {
			return d.StartDate, true
		}
		return time.Time{}, false
	}
	if !d.StartDate.IsZero() && after.Before(d.StartDate) {
		after = d.StartDate.Add(-time.Nanosecond)
	}
	next := s.Next(after)
	if next.IsZero() || !d.withinEnd(next) {
		return time.Time{}, false
	}
	return next, true
}

func (d *DAG) withinEnd(t time.Time) bool {
	return d.EndDate.IsZero() || !t.After(d.EndDate)
}

// DataInterval returns the data interval of the run with a logical date:
// [logical, next tick) as in Airflow 2; a run is due when its interval
// has ended. Manual and @once runs have an empty interval at logical.
func (d *DAG) DataInterval(logical time.Time) (start, end time.Time) {
	s := d.schedule()
	if s == nil || s.Once {
		return logical, logical
	}
	end = s.Next(logical)
	if end.IsZero() {
		end = logical
	}
	return logical, end
}

// CatchupWindow returns the logical dates of the runs to create at now,
// oldest first, given the logical date of the DAG's latest scheduled run
// (nil for none): with catchup, every interval after lastLogical (or from
// start_date) that has ended, at most MaxCatchupRuns; without catchup (or
// without a start_date to catch up from), only the latest ended interval,
// if it is newer than lastLogical. @once gives start_date (or now) once.
func (d *DAG) CatchupWindow(lastLogical *time.Time, now time.Time) []time.Time {
	s := d.schedule()
	switch {
	case s == nil:
		return nil
	case s.Once:
		return d.onceWindow(lastLogical, now)
	case d.Catchup && (lastLogical != nil || !d.StartDate.IsZero()):
		return d.catchupAll(s, lastLogical, now)
	}
	latest, ok := d.latestEnded(s, now)
	if !ok || (lastLogical != nil && !latest.After(*lastLogical)) {
		return nil
	}
	return []time.Time{latest}
}

func (d *DAG) onceWindow(lastLogical *time.Time, now time.Time) []time.Time {
	if lastLogical != nil {
		return nil
	}
	at := d.StartDate
	if at.IsZero() {
		at = now
	}
	if at.After(now) || !d.withinEnd(at) {
		return nil
	}
	return []time.Time{at}
}

// catchupAll lists every ended interval after lastLogical (or from
// start_date).
func (d *DAG) catchupAll(s *Schedule, lastLogical *time.Time, now time.Time) []time.Time {
	var l time.Time
	var ok bool
	if lastLogical != nil {
		l, ok = d.NextRun(*lastLogical)
	} else {
		l, ok = d.NextRun(d.StartDate.Add(-time.Nanosecond))
	}
	var out []time.Time
	for ok && len(out) < MaxCatchupRuns {
		end := s.Next(l)
		if end.IsZero() || end.After(now) {
			break
		}
		out = append(out, l)
		l, ok = d.NextRun(l)
	}
	return out
}

// latestEnded returns the logical date of the latest interval that ended
// at or before now, within start_date and end_date.
func (d *DAG) latestEnded(s *Schedule, now time.Time) (time.Time, bool) {
	end := s.Prev(now)
	if end.IsZero() {
		return time.Time{}, false
	}
	l := s.Prev(end.Add(-time.Nanosecond))
	if l.IsZero() {
		return time.Time{}, false
	}
	if !d.withinEnd(l) {
		l = s.Prev(d.EndDate)
	}
	if l.IsZero() || (!d.StartDate.IsZero() && l.Before(d.StartDate)) {
		return time.Time{}, false
	}
	return l, true
}

// NextDue returns the next run the schedule will create after now: its
// logical date and when it becomes due (the end of its data interval; for
// @once, start_date). ok is false when no further run will be created.
func (d *DAG) NextDue(now time.Time) (logical, due time.Time, ok bool) {
	s := d.schedule()
	switch {
	case s == nil:
		return time.Time{}, time.Time{}, false
	case s.Once:
		if d.StartDate.After(now) && d.withinEnd(d.StartDate) {
			return d.StartDate, d.StartDate, true
		}
		return time.Time{}, time.Time{}, false
	}
	logical = s.Prev(now)
	var found bool
	switch {
	case !d.StartDate.IsZero() && (logical.IsZero() || logical.Before(d.StartDate)):
		logical, found = d.NextRun(d.StartDate.Add(-time.Nanosecond))
	case logical.IsZero():
		logical, found = d.NextRun(now)
	default:
		found = true
	}
	if !found {
		return time.Time{}, time.Time{}, false
	}
	if !d.withinEnd(logical) {
		return time.Time{}, time.Time{}, false
	}
	_, due = d.DataInterval(logical)
	return logical, due, true
}
