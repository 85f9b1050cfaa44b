// Package eval compiles policy sets to CEL programs and evaluates one tool
// call against them: which rules match, what they decide, which limits apply.
package eval

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"

	"github.com/agentpdp/agentpdp/internal/policy"
)

// ContentScanner backs the CEL functions injection_score and pii. The
// content package implements it; nil scores 0 and finds nothing.
type ContentScanner interface {
	InjectionScore(text string) float64
	PIIKinds(text string) []string
}

var objectType = cel.MapType(cel.StringType, cel.DynType)

// newEnv builds the one CEL environment every policy compiles in.
func newEnv(scanner ContentScanner) (*cel.Env, error) {
	zones := &zoneCache{}
	opts := []cel.EnvOption{
		// The request's objects are maps, not proto messages: cel-go deep-copies
		// a Struct field on every access to a message field, which made
		// resource.attributes cost more than the whole rest of a decision.
		// checkFields restores the field-name checking message types gave.
		cel.Variable("agent", objectType),
		cel.Variable("principal", objectType),
		cel.Variable("tool", cel.StringType),
		cel.Variable("args", objectType),
		cel.Variable("resource", objectType),
		cel.Variable("inputs", cel.ListType(objectType)),
		cel.Variable("now", cel.TimestampType),
		ext.Strings(), ext.Lists(), ext.Sets(), ext.Math(), ext.Encoders(),
		cel.OptionalTypes(),
		cel.Function("within_hours",
			cel.Overload("within_hours_timestamp_string_string_string",
				[]*cel.Type{cel.TimestampType, cel.StringType, cel.StringType, cel.StringType}, cel.BoolType,
				cel.FunctionBinding(zones.withinHours))),
		cel.Function("weekday",
			cel.Overload("weekday_timestamp_string",
				[]*cel.Type{cel.TimestampType, cel.StringType}, cel.IntType,
				cel.BinaryBinding(zones.weekday))),
		cel.Function("email_domain",
			cel.Overload("email_domain_string", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(emailDomain))),
		cel.Function("glob",
			cel.Overload("glob_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(globMatch))),
		cel.Function("injection_score",
			cel.Overload("injection_score_string", []*cel.Type{cel.StringType}, cel.DoubleType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					if scanner == nil {
						return types.Double(0)
					}
					return types.Double(scanner.InjectionScore(string(v.(types.String))))
				}))),
		cel.Function("pii",
			cel.Overload("pii_string", []*cel.Type{cel.StringType}, cel.ListType(cel.StringType),
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					var kinds []string
					if scanner != nil {
						kinds = scanner.PIIKinds(string(v.(types.String)))
					}
					return types.DefaultTypeAdapter.NativeToValue(kinds)
				}))),
	}
	return cel.NewEnv(opts...)
}

// zoneCache keeps loaded time zones: time.LoadLocation reads tzdata each call.
type zoneCache struct{ m sync.Map }

func (z *zoneCache) load(name string) (*time.Location, error) {
	if loc, ok := z.m.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	z.m.Store(name, loc)
	return loc, nil
}

func (z *zoneCache) withinHours(args ...ref.Val) ref.Val {
	ts, ok := args[0].(types.Timestamp)
	if !ok {
		return types.NewErr("within_hours: first argument must be a timestamp")
	}
	loc, err := z.load(string(args[1].(types.String)))
	if err != nil {
		return types.NewErr("within_hours: %v", err)
	}
	from, err1 := parseClock(string(args[2].(types.String)))
	to, err2 := parseClock(string(args[3].(types.String)))
	if err1 != nil || err2 != nil {
		return types.NewErr("within_hours: times must be HH:MM, got %q and %q", args[2], args[3])
	}
	hour, minute, _ := ts.Time.In(loc).Clock()
	m := hour*60 + minute
	if from <= to {
		return types.Bool(m >= from && m < to)
	}
	// A window that wraps midnight, e.g. 22:00 to 06:00.
	return types.Bool(m >= from || m < to)
}

func (z *zoneCache) weekday(tsVal, tzVal ref.Val) ref.Val {
	ts, ok := tsVal.(types.Timestamp)
	if !ok {
		return types.NewErr("weekday: first argument must be a timestamp")
	}
	loc, err := z.load(string(tzVal.(types.String)))
	if err != nil {
		return types.NewErr("weekday: %v", err)
	}
	wd := int64(ts.Time.In(loc).Weekday())
	if wd == 0 {
		wd = 7
	}
	return types.Int(wd)
}

// parseClock turns "HH:MM" into minutes after midnight; "24:00" is the end
// of the day.
func parseClock(s string) (int, error) {
	// By hand, not time.Parse: it runs on every evaluation of within_hours
	// and time.Parse was a twentieth of a whole decision.
	h, m, ok := strings.Cut(s, ":")
	if ok && len(h) >= 1 && len(h) <= 2 && len(m) == 2 {
		hh, errH := strconv.Atoi(h)
		mm, errM := strconv.Atoi(m)
		switch {
		case errH != nil || errM != nil || h[0] == '+' || h[0] == '-' || m[0] == '+' || m[0] == '-':
		case hh == 24 && mm == 0:
			return 24 * 60, nil
		case hh < 24 && mm < 60:
			return hh*60 + mm, nil
		}
	}
	return 0, fmt.Errorf("%q is not HH:MM", s)
}

// emailDomain returns the lowercased domain of an address, accepting the
// "Name <user@host>" form; "" when there is none.
func emailDomain(v ref.Val) ref.Val {
	s := string(v.(types.String))
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		s = strings.TrimSuffix(s[i+1:], ">")
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return types.String("")
	}
	return types.String(strings.ToLower(strings.TrimSpace(strings.TrimSuffix(s[at+1:], "."))))
}

func globMatch(s, pattern ref.Val) ref.Val {
	return types.Bool(policy.Match(string(pattern.(types.String)), string(s.(types.String))))
}
