package cli

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// humanDuration renders d the way kubectl's AGE column does: exact seconds
// up to two minutes, then ever coarser units ("5m10s", "12m", "3h", "2d3h",
// "10d", "2y100d", "9y"), keeping two units only while the larger is small.
func humanDuration(d time.Duration) string {
	// Up to a second of clock skew still reads as "now".
	if seconds := int(d.Seconds()); seconds < -1 {
		return "<invalid>"
	} else if seconds < 0 {
		return "0s"
	} else if seconds < 60*2 {
		return fmt.Sprintf("%ds", seconds)
	}
	minutes := int(d / time.Minute)
	if minutes < 10 {
		return withRemainder(minutes, "m", int(d/time.Second)%60, "s")
	} else if minutes < 60*3 {
		return fmt.Sprintf("%dm", minutes)
	}
	hours := int(d / time.Hour)
	switch {
	case hours < 8:
		return withRemainder(hours, "h", int(d/time.Minute)%60, "m")
	case hours < 48:
		return fmt.Sprintf("%dh", hours)
	case hours < 24*8:
		return withRemainder(hours/24, "d", hours%24, "h")
	case hours < 24*365*2:
		return fmt.Sprintf("%dd", hours/24)
	case hours < 24*365*8:
		return withRemainder(hours/24/365, "y", (hours/24)%365, "d")
	}
	return fmt.Sprintf("%dy", hours/24/365)
}

// withRemainder prints "<n><unit>" or "<n><unit><r><runit>" when r is not 0.
func withRemainder(n int, unit string, r int, runit string) string {
	if r == 0 {
		return fmt.Sprintf("%d%s", n, unit)
	}
	return fmt.Sprintf("%d%s%d%s", n, unit, r, runit)
}

// since renders the age of ts at now, "<unknown>" when ts is unset.
func since(ts *timestamppb.Timestamp, now time.Time) string {
	if ts == nil || (ts.GetSeconds() == 0 && ts.GetNanos() == 0) {
		return "<unknown>"
	}
	return humanDuration(now.Sub(ts.AsTime()))
}

// isZeroTime reports whether a timestamp is unset.
func isZeroTime(ts *timestamppb.Timestamp) bool {
	return ts == nil || (ts.GetSeconds() == 0 && ts.GetNanos() == 0)
}

// rfc1123z renders a timestamp as kubectl's describe does
// ("Mon, 02 Jan 2006 15:04:05 -0700"), "<unset>" when unset.
func rfc1123z(ts *timestamppb.Timestamp) string {
	if isZeroTime(ts) {
		return "<unset>"
	}
	return ts.AsTime().Local().Format(time.RFC1123Z)
}
