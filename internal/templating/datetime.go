package templating

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// pyDatetime is a timezone-aware datetime as Airflow's pendulum objects
// render it: str() is "2026-01-01 00:00:00+00:00".
type pyDatetime struct{ t time.Time }

func newPyDatetime(t time.Time) *pyDatetime { return &pyDatetime{t: t} }

func (d *pyDatetime) String() string { return isoformat(d.t, ' ') }

func (d *pyDatetime) GetItem(any) (*exec.Value, bool) { return exec.AsValue(nil), false }

func (d *pyDatetime) GetAttribute(name string) (*exec.Value, bool) {
	t := d.t
	var v any
	switch name {
	case "year":
		v = int64(t.Year())
	case "month":
		v = int64(t.Month())
	case "day":
		v = int64(t.Day())
	case "hour":
		v = int64(t.Hour())
	case "minute":
		v = int64(t.Minute())
	case "second":
		v = int64(t.Second())
	case "microsecond":
		v = int64(t.Nanosecond() / 1000)
	case "isoformat":
		v = pyFunc(func(args *exec.VarArgs) (any, error) {
			sep := byte('T')
			if len(args.Args) > 0 {
				s := args.Args[0].String()
				if len(s) != 1 {
					return nil, fmt.Errorf("isoformat: separator must be one character")
				}
				sep = s[0]
			}
			return isoformat(t, sep), nil
		})
	case "strftime":
		v = pyFunc(func(args *exec.VarArgs) (any, error) {
			if len(args.Args) != 1 || !args.Args[0].IsString() {
				return nil, fmt.Errorf("strftime expects one format string")
			}
			return strftime(t, args.Args[0].String()), nil
		})
	case "timestamp":
		v = pyFunc(func(*exec.VarArgs) (any, error) {
			return float64(t.UnixNano()) / 1e9, nil
		})
	case "in_timezone", "in_tz", "astimezone":
		v = pyFunc(func(args *exec.VarArgs) (any, error) {
			if len(args.Args) != 1 {
				return nil, fmt.Errorf("%s expects one timezone name", name)
			}
			loc, err := time.LoadLocation(args.Args[0].String())
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			return newPyDatetime(t.In(loc)), nil
		})
	case "add", "subtract":
		v = pyFunc(func(args *exec.VarArgs) (any, error) {
			d, err := durationKwargs(name, args)
			if err != nil {
				return nil, err
			}
			if name == "subtract" {
				d = -d
			}
			return newPyDatetime(t.Add(d)), nil
		})
	default:
		return exec.AsValue(nil), false
	}
	return exec.ToValue(v), true
}

func durationKwargs(name string, args *exec.VarArgs) (time.Duration, error) {
	if len(args.Args) > 0 {
		return 0, fmt.Errorf("%s takes keyword arguments only (days=, hours=, minutes=, seconds=, weeks=)", name)
	}
	units := map[string]time.Duration{"weeks": 7 * 24 * time.Hour, "days": 24 * time.Hour, "hours": time.Hour, "minutes": time.Minute, "seconds": time.Second}
	var total time.Duration
	for k, v := range args.KwArgs {
		unit, ok := units[k]
		if !ok || !v.IsNumber() {
			return 0, fmt.Errorf("%s: unsupported argument %s=%s", name, k, v.String())
		}
		total += time.Duration(v.Float() * float64(unit))
	}
	return total, nil
}

// isoformat is Python's datetime.isoformat for aware datetimes.
func isoformat(t time.Time, sep byte) string {
	var b strings.Builder
	b.Grow(32)
	b.WriteString(t.Format("2006-01-02"))
	b.WriteByte(sep)
	b.WriteString(t.Format("15:04:05"))
	if us := t.Nanosecond() / 1000; us != 0 {
		fmt.Fprintf(&b, ".%06d", us)
	}
	b.WriteString(t.Format("-07:00"))
	return b.String()
}

var (
	shortDays   = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	longDays    = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	shortMonths = []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
	longMonths  = []string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
)

// strftime implements Python's strftime directives (C locale).
func strftime(t time.Time, format string) string {
	var b strings.Builder
	pad := func(n, width int) {
		s := strconv.Itoa(n)
		for i := len(s); i < width; i++ {
			b.WriteByte('0')
		}
		b.WriteString(s)
	}
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			b.WriteByte(c)
			continue
		}
		i++
		switch format[i] {
		case 'Y':
			pad(t.Year(), 4)
		case 'y':
			pad(t.Year()%100, 2)
		case 'm':
			pad(int(t.Month()), 2)
		case 'd':
			pad(t.Day(), 2)
		case 'H':
			pad(t.Hour(), 2)
		case 'I':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			pad(h, 2)
		case 'M':
			pad(t.Minute(), 2)
		case 'S':
			pad(t.Second(), 2)
		case 'f':
			pad(t.Nanosecond()/1000, 6)
		case 'j':
			pad(t.YearDay(), 3)
		case 'p':
			if t.Hour() < 12 {
				b.WriteString("AM")
			} else {
				b.WriteString("PM")
			}
		case 'a':
			b.WriteString(shortDays[t.Weekday()])
		case 'A':
			b.WriteString(longDays[t.Weekday()])
		case 'w':
			b.WriteString(strconv.Itoa(int(t.Weekday())))
		case 'b', 'h':
			b.WriteString(shortMonths[t.Month()-1])
		case 'B':
			b.WriteString(longMonths[t.Month()-1])
		case 'z':
			b.WriteString(t.Format("-0700"))
		case 'Z':
			name, _ := t.Zone()
			b.WriteString(name)
		case 's':
			b.WriteString(strconv.FormatInt(t.Unix(), 10))
		case 'F':
			b.WriteString(t.Format("2006-01-02"))
		case 'T':
			b.WriteString(t.Format("15:04:05"))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(format[i])
		}
	}
	return b.String()
}

// strptime implements the numeric and English-name directives of Python's
// strptime; the result is UTC unless the input carries %z.
func strptime(value, format string) (time.Time, error) {
	year, month, day, hour, minute, second, micro := 1900, 1, 1, 0, 0, 0, 0
	pm, hasPM := false, false
	loc := time.UTC
	pos := 0
	fail := func() (time.Time, error) {
		return time.Time{}, fmt.Errorf("time data %q does not match format %q", value, format)
	}
	num := func(maxDigits int) (int, bool) {
		start := pos
		for pos < len(value) && pos-start < maxDigits && value[pos] >= '0' && value[pos] <= '9' {
			pos++
		}
		if pos == start {
			return 0, false
		}
		n, _ := strconv.Atoi(value[start:pos])
		return n, true
	}
	name := func(names []string) (int, bool) {
		for i, n := range names {
			if len(value)-pos >= len(n) && strings.EqualFold(value[pos:pos+len(n)], n) {
				pos += len(n)
				return i, true
			}
		}
		return 0, false
	}
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			if pos >= len(value) || value[pos] != c {
				return fail()
			}
			pos++
			continue
		}
		i++
		var ok bool
		switch format[i] {
		case 'Y':
			year, ok = num(4)
		case 'y':
			year, ok = num(2)
			if year < 69 {
				year += 2000
			} else {
				year += 1900
			}
		case 'm':
			month, ok = num(2)
		case 'd':
			day, ok = num(2)
		case 'H':
			hour, ok = num(2)
		case 'I':
			hour, ok = num(2)
		case 'M':
			minute, ok = num(2)
		case 'S':
			second, ok = num(2)
		case 'f':
			start := pos
			micro, ok = num(6)
			for d := pos - start; d < 6; d++ {
				micro *= 10
			}
		case 'j':
			var yday int
			yday, ok = num(3)
			month, day = 1, yday
		case 'p':
			var idx int
			idx, ok = name([]string{"AM", "PM"})
			pm, hasPM = idx == 1, true
		case 'b', 'h':
			month, ok = name(shortMonths)
			month++
		case 'B':
			month, ok = name(longMonths)
			month++
		case 'a':
			_, ok = name(shortDays)
		case 'A':
			_, ok = name(longDays)
		case 'z':
			if pos < len(value) && value[pos] == 'Z' {
				pos++
				ok = true
				break
			}
			if len(value)-pos < 5 || (value[pos] != '+' && value[pos] != '-') {
				return fail()
			}
			sign := value[pos]
			pos++
			var hh, mm int
			if hh, ok = num(2); !ok {
				return fail()
			}
			if pos < len(value) && value[pos] == ':' {
				pos++
			}
			if mm, ok = num(2); !ok {
				return fail()
			}
			off := hh*3600 + mm*60
			if sign == '-' {
				off = -off
			}
			loc = time.FixedZone("", off)
		case '%':
			ok = pos < len(value) && value[pos] == '%'
			pos++
		default:
			return time.Time{}, fmt.Errorf("unsupported strptime directive %%%c", format[i])
		}
		if !ok {
			return fail()
		}
	}
	if pos != len(value) {
		return time.Time{}, fmt.Errorf("unconverted data remains: %s", value[pos:])
	}
	if hasPM {
		hour %= 12
		if pm {
			hour += 12
		}
	}
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 61 {
		return fail()
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, micro*1000, loc)
	if t.Day() != day && format != "%j" && !strings.Contains(format, "%j") {
		return fail()
	}
	return t, nil
}
