package dag

import (
	"reflect"
	"testing"
	"time"
)

func mustLocation(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := LoadTimezone(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestNextRun(t *testing.T) {
	t.Parallel()
	newYork := mustLocation(t, "America/New_York")
	berlin := mustLocation(t, "Europe/Berlin")
	for _, tc := range []struct {
		name     string
		dag      DAG
		after    string
		want     string // "" = no run
		wantZone string // the zone abbreviation the run falls in, when it matters
	}{
		{name: "daily UTC", dag: DAG{Schedule: "@daily"}, after: "2026-01-01T10:00:00Z", want: "2026-01-02T00:00:00Z"},
		{name: "tick is exclusive", dag: DAG{Schedule: "@daily"}, after: "2026-01-02T00:00:00Z", want: "2026-01-03T00:00:00Z"},
		{name: "hourly", dag: DAG{Schedule: "@hourly"}, after: "2026-01-01T10:59:59Z", want: "2026-01-01T11:00:00Z"},
		{name: "cron in a timezone", dag: DAG{Schedule: "0 9 * * 1-5", Timezone: newYork}, after: "2026-01-02T15:00:00Z", want: "2026-01-05T14:00:00Z"},

		// America/New_York springs forward on 2026-03-08 at 02:00 EST to 03:00 EDT.
		{name: "NY 02:30 on the spring-forward day runs at 03:30 EDT", dag: DAG{Schedule: "30 2 * * *", Timezone: newYork},
			after: "2026-03-07T07:30:00Z", want: "2026-03-08T07:30:00Z", wantZone: "EDT"},
		{name: "NY 02:30 the day after is 02:30 EDT", dag: DAG{Schedule: "30 2 * * *", Timezone: newYork},
			after: "2026-03-08T07:30:00Z", want: "2026-03-09T06:30:00Z", wantZone: "EDT"},
		{name: "NY midnight across spring-forward", dag: DAG{Schedule: "@daily", Timezone: newYork},
			after: "2026-03-08T05:00:00Z", want: "2026-03-09T04:00:00Z", wantZone: "EDT"},
		{name: "NY hourly skips the missing hour", dag: DAG{Schedule: "@hourly", Timezone: newYork},
			after: "2026-03-08T06:00:00Z", want: "2026-03-08T07:00:00Z", wantZone: "EDT"},

		// America/New_York falls back on 2026-11-01 at 02:00 EDT to 01:00 EST.
		{name: "NY 01:30 runs once on the fall-back day, first time", dag: DAG{Schedule: "30 1 * * *", Timezone: newYork},
			after: "2026-10-31T05:30:00Z", want: "2026-11-01T05:30:00Z", wantZone: "EDT"},
		{name: "NY 01:30 not repeated at 01:30 EST", dag: DAG{Schedule: "30 1 * * *", Timezone: newYork},
			after: "2026-11-01T05:30:00Z", want: "2026-11-02T06:30:00Z", wantZone: "EST"},
		{name: "NY 01:30 asked from inside the repeated hour", dag: DAG{Schedule: "30 1 * * *", Timezone: newYork},
			after: "2026-11-01T06:10:00Z", want: "2026-11-02T06:30:00Z", wantZone: "EST"},
		{name: "NY hourly runs in both 01:00s (first)", dag: DAG{Schedule: "@hourly", Timezone: newYork},
			after: "2026-11-01T04:30:00Z", want: "2026-11-01T05:00:00Z", wantZone: "EDT"},
		{name: "NY hourly runs in both 01:00s (second)", dag: DAG{Schedule: "@hourly", Timezone: newYork},
			after: "2026-11-01T05:00:00Z", want: "2026-11-01T06:00:00Z", wantZone: "EST"},

		// Europe/Berlin springs forward on 2026-03-29 at 02:00 CET to 03:00 CEST.
		{name: "Berlin 02:30 on the spring-forward day runs at 03:30 CEST", dag: DAG{Schedule: "30 2 * * *", Timezone: berlin},
			after: "2026-03-28T01:30:00Z", want: "2026-03-29T01:30:00Z", wantZone: "CEST"},
		{name: "Berlin 02:30 the day after", dag: DAG{Schedule: "30 2 * * *", Timezone: berlin},
			after: "2026-03-29T01:30:00Z", want: "2026-03-30T00:30:00Z", wantZone: "CEST"},
		// ... and falls back on 2026-10-25 at 03:00 CEST to 02:00 CET.
		{name: "Berlin 02:30 once on the fall-back day", dag: DAG{Schedule: "30 2 * * *", Timezone: berlin},
			after: "2026-10-25T00:00:00Z", want: "2026-10-25T00:30:00Z", wantZone: "CEST"},
		{name: "Berlin 02:30 then the next day", dag: DAG{Schedule: "30 2 * * *", Timezone: berlin},
			after: "2026-10-25T00:30:00Z", want: "2026-10-26T01:30:00Z", wantZone: "CET"},

		{name: "first run at an aligned start_date", dag: DAG{Schedule: "@daily", StartDate: utc("2026-01-10T00:00:00Z")},
			after: "2026-01-01T00:00:00Z", want: "2026-01-10T00:00:00Z"},
		{name: "first run after an unaligned start_date", dag: DAG{Schedule: "@daily", StartDate: utc("2026-01-10T06:00:00Z")},
			after: "2026-01-01T00:00:00Z", want: "2026-01-11T00:00:00Z"},
		{name: "no run past end_date", dag: DAG{Schedule: "@daily", EndDate: utc("2026-01-10T00:00:00Z")},
			after: "2026-01-10T00:00:00Z", want: ""},
		{name: "last run at end_date", dag: DAG{Schedule: "@daily", EndDate: utc("2026-01-10T00:00:00Z")},
			after: "2026-01-09T00:00:00Z", want: "2026-01-10T00:00:00Z"},
		{name: "manual", dag: DAG{}, after: "2026-01-01T00:00:00Z", want: ""},
		{name: "once before start_date", dag: DAG{Schedule: "@once", StartDate: utc("2026-02-01T00:00:00Z")},
			after: "2026-01-01T00:00:00Z", want: "2026-02-01T00:00:00Z"},
		{name: "once after start_date", dag: DAG{Schedule: "@once", StartDate: utc("2026-02-01T00:00:00Z")},
			after: "2026-02-01T00:00:00Z", want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := tc.dag.NextRun(utc(tc.after))
			if tc.want == "" {
				if ok {
					t.Errorf("NextRun = %v, want none", got)
				}
				return
			}
			if !ok || !got.Equal(utc(tc.want)) {
				t.Errorf("NextRun = %v (%v), want %v", got.UTC(), ok, tc.want)
			}
			if zone, _ := got.Zone(); tc.wantZone != "" && zone != tc.wantZone {
				t.Errorf("NextRun zone = %s, want %s", zone, tc.wantZone)
			}
		})
	}
}

func TestDataInterval(t *testing.T) {
	t.Parallel()
	berlin := mustLocation(t, "Europe/Berlin")
	for _, tc := range []struct {
		name           string
		dag            DAG
		logical        string
		start, end     string
		wantHoursWidth float64
	}{
		{name: "daily UTC", dag: DAG{Schedule: "@daily"}, logical: "2026-01-01T00:00:00Z", end: "2026-01-02T00:00:00Z", wantHoursWidth: 24},
		{name: "Berlin day of spring-forward is 23h", dag: DAG{Schedule: "@daily", Timezone: berlin},
			logical: "2026-03-28T23:00:00Z", end: "2026-03-29T22:00:00Z", wantHoursWidth: 23},
		{name: "Berlin day of fall-back is 25h", dag: DAG{Schedule: "@daily", Timezone: berlin},
			logical: "2026-10-24T22:00:00Z", end: "2026-10-25T23:00:00Z", wantHoursWidth: 25},
		{name: "manual run has an empty interval", dag: DAG{}, logical: "2026-01-01T12:34:00Z", end: "2026-01-01T12:34:00Z"},
		{name: "@once has an empty interval", dag: DAG{Schedule: "@once"}, logical: "2026-01-01T12:34:00Z", end: "2026-01-01T12:34:00Z"},
	} {
		start, end := tc.dag.DataInterval(utc(tc.logical))
		if !start.Equal(utc(tc.logical)) || !end.Equal(utc(tc.end)) {
			t.Errorf("%s: DataInterval = [%v, %v), want [%v, %v)", tc.name, start.UTC(), end.UTC(), tc.logical, tc.end)
		}
		if h := end.Sub(start).Hours(); h != tc.wantHoursWidth {
			t.Errorf("%s: interval is %vh, want %vh", tc.name, h, tc.wantHoursWidth)
		}
	}
}

func TestCatchupWindow(t *testing.T) {
	t.Parallel()
	newYork := mustLocation(t, "America/New_York")
	ptr := func(s string) *time.Time { t := utc(s); return &t }
	jan1 := utc("2026-01-01T00:00:00Z")
	for _, tc := range []struct {
		name string
		dag  DAG
		last *time.Time
		now  string
		want []string
	}{
		{name: "catchup from start_date", dag: DAG{Schedule: "@daily", Catchup: true, StartDate: jan1},
			now: "2026-01-04T12:00:00Z", want: []string{"2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"}},
		{name: "catchup after the last run", dag: DAG{Schedule: "@daily", Catchup: true, StartDate: jan1},
			last: ptr("2026-01-02T00:00:00Z"), now: "2026-01-04T12:00:00Z", want: []string{"2026-01-03T00:00:00Z"}},
		{name: "catchup up to date", dag: DAG{Schedule: "@daily", Catchup: true, StartDate: jan1},
			last: ptr("2026-01-03T00:00:00Z"), now: "2026-01-04T12:00:00Z", want: nil},
		{name: "interval ending exactly now is due", dag: DAG{Schedule: "@daily", Catchup: true, StartDate: jan1},
			last: ptr("2026-01-02T00:00:00Z"), now: "2026-01-04T00:00:00Z", want: []string{"2026-01-03T00:00:00Z"}},
		{name: "catchup stops at end_date", dag: DAG{Schedule: "@daily", Catchup: true, StartDate: jan1, EndDate: utc("2026-01-02T00:00:00Z")},
			now: "2026-02-01T00:00:00Z", want: []string{"2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"}},
		{name: "catchup across spring-forward in New York",
			dag: DAG{Schedule: "@daily", Catchup: true, Timezone: newYork, StartDate: utc("2026-03-07T05:00:00Z")},
			now: "2026-03-10T04:00:00Z", want: []string{"2026-03-07T05:00:00Z", "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z"}},
		{name: "catchup of a 02:30 job across spring-forward in New York",
			dag: DAG{Schedule: "30 2 * * *", Catchup: true, Timezone: newYork, StartDate: utc("2026-03-07T05:00:00Z")},
			now: "2026-03-10T12:00:00Z", want: []string{"2026-03-07T07:30:00Z", "2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z"}},
		{name: "no catchup: only the latest ended interval", dag: DAG{Schedule: "@daily", StartDate: jan1},
			now: "2026-01-04T12:00:00Z", want: []string{"2026-01-03T00:00:00Z"}},
		{name: "no catchup: skips missed intervals after the last run", dag: DAG{Schedule: "@daily", StartDate: jan1},
			last: ptr("2026-01-01T00:00:00Z"), now: "2026-01-04T12:00:00Z", want: []string{"2026-01-03T00:00:00Z"}},
		{name: "no catchup: nothing new", dag: DAG{Schedule: "@daily", StartDate: jan1},
			last: ptr("2026-01-03T00:00:00Z"), now: "2026-01-04T12:00:00Z", want: nil},
		{name: "no catchup: first interval not ended yet", dag: DAG{Schedule: "@daily", StartDate: jan1},
			now: "2026-01-01T12:00:00Z", want: nil},
		{name: "no catchup: the last interval within end_date", dag: DAG{Schedule: "@daily", StartDate: jan1, EndDate: utc("2026-01-05T00:00:00Z")},
			now: "2026-02-01T00:00:00Z", want: []string{"2026-01-05T00:00:00Z"}},
		{name: "no catchup without start_date", dag: DAG{Schedule: "@hourly", Catchup: true},
			now: "2026-01-04T12:30:00Z", want: []string{"2026-01-04T11:00:00Z"}},
		{name: "start_date in the future", dag: DAG{Schedule: "@daily", Catchup: true, StartDate: utc("2027-01-01T00:00:00Z")},
			now: "2026-01-04T12:00:00Z", want: nil},
		{name: "once at start_date", dag: DAG{Schedule: "@once", StartDate: jan1}, now: "2026-01-04T12:00:00Z", want: []string{"2026-01-01T00:00:00Z"}},
		{name: "once without start_date runs now", dag: DAG{Schedule: "@once"}, now: "2026-01-04T12:00:00Z", want: []string{"2026-01-04T12:00:00Z"}},
		{name: "once already ran", dag: DAG{Schedule: "@once", StartDate: jan1}, last: &jan1, now: "2026-01-04T12:00:00Z", want: nil},
		{name: "once not yet", dag: DAG{Schedule: "@once", StartDate: utc("2026-02-01T00:00:00Z")}, now: "2026-01-04T12:00:00Z", want: nil},
		{name: "manual", dag: DAG{}, now: "2026-01-04T12:00:00Z", want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, l := range tc.dag.CatchupWindow(tc.last, utc(tc.now)) {
				got = append(got, l.UTC().Format(time.RFC3339))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("CatchupWindow = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCatchupWindowIsCapped(t *testing.T) {
	t.Parallel()
	d := DAG{Schedule: "* * * * *", Catchup: true, StartDate: utc("2020-01-01T00:00:00Z")}
	got := d.CatchupWindow(nil, utc("2026-01-01T00:00:00Z"))
	if len(got) != MaxCatchupRuns || !got[0].Equal(d.StartDate) || !got[len(got)-1].Equal(d.StartDate.Add((MaxCatchupRuns-1)*time.Minute)) {
		t.Errorf("CatchupWindow gave %d runs from %v to %v", len(got), got[0], got[len(got)-1])
	}
}

func TestNextDue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		dag          DAG
		now          string
		logical, due string
	}{
		{name: "interval in progress", dag: DAG{Schedule: "@daily"}, now: "2026-01-04T12:00:00Z",
			logical: "2026-01-04T00:00:00Z", due: "2026-01-05T00:00:00Z"},
		{name: "future start_date", dag: DAG{Schedule: "@daily", StartDate: utc("2026-02-01T06:00:00Z")}, now: "2026-01-04T12:00:00Z",
			logical: "2026-02-02T00:00:00Z", due: "2026-02-03T00:00:00Z"},
		{name: "once", dag: DAG{Schedule: "@once", StartDate: utc("2026-02-01T00:00:00Z")}, now: "2026-01-04T12:00:00Z",
			logical: "2026-02-01T00:00:00Z", due: "2026-02-01T00:00:00Z"},
		{name: "past end_date", dag: DAG{Schedule: "@daily", EndDate: utc("2026-01-01T00:00:00Z")}, now: "2026-01-04T12:00:00Z"},
		{name: "manual", dag: DAG{}, now: "2026-01-04T12:00:00Z"},
	} {
		logical, due, ok := tc.dag.NextDue(utc(tc.now))
		if tc.logical == "" {
			if ok {
				t.Errorf("%s: NextDue = %v, %v, want none", tc.name, logical, due)
			}
			continue
		}
		if !ok || !logical.Equal(utc(tc.logical)) || !due.Equal(utc(tc.due)) {
			t.Errorf("%s: NextDue = %v, %v, %v; want %v, %v", tc.name, logical.UTC(), due.UTC(), ok, tc.logical, tc.due)
		}
	}
}

func TestCronPresets(t *testing.T) {
	t.Parallel()
	presets := CronPresets()
	for _, name := range []string{"@hourly", "@daily", "@weekly", "@monthly", "@yearly"} {
		if _, err := ParseSchedule(name, nil); err != nil || presets[name] == "" {
			t.Errorf("preset %s: %v %q", name, err, presets[name])
		}
	}
	presets["@daily"] = "changed"
	if CronPresets()["@daily"] != "0 0 * * *" {
		t.Errorf("CronPresets hands out its own table")
	}
	if s, err := ParseSchedule("@once", nil); err != nil || !s.Once {
		t.Errorf("@once: %v", err)
	}
}
