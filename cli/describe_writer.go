package cli

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

// maxAnnotationLen is where describe starts folding an annotation value.
const maxAnnotationLen = 140

// describeWriter writes describe output at indentation levels of two spaces
// into a tabwriter laid out like kubectl's describers (padding 2).
type describeWriter struct {
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

// newDescribeWriter returns an empty describe writer.
func newDescribeWriter() *describeWriter {
	w := &describeWriter{}
	w.tw = tabwriter.NewWriter(&w.buf, 0, 8, 2, ' ', 0)
	return w
}

// write writes a formatted line fragment at an indentation level.
func (w *describeWriter) write(level int, format string, a ...any) {
	fmt.Fprintf(w.tw, strings.Repeat("  ", level)+format, a...)
}

// line writes text and a newline with no indentation.
func (w *describeWriter) line(s string) {
	fmt.Fprintln(w.tw, s)
}

// flush ends the current column block, so what follows aligns on its own.
func (w *describeWriter) flush() {
	_ = w.tw.Flush() // writes into a bytes.Buffer, which cannot fail
}

// String flushes and returns everything written.
func (w *describeWriter) String() string {
	w.flush()
	return w.buf.String()
}

// labels writes a title and a map as "k=v" lines, one per key, aligned
// under the first; "<none>" when empty. The title carries its indentation
// ("  Labels" inside a pod template).
func (w *describeWriter) labels(title string, m map[string]string) {
	w.write(0, "%s:\t", title)
	if len(m) == 0 {
		w.line("<none>")
		return
	}
	for i, k := range sortedKeys(m) {
		if i > 0 {
			w.write(0, "\t")
		}
		w.write(0, "%s=%s\n", k, m[k])
	}
}

// annotations writes annotations as "k: v" lines; long or multi-line values
// are folded under their key.
func (w *describeWriter) annotations(title string, m map[string]string) {
	w.write(0, "%s:\t", title)
	keys := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		if k != "kubectl.kubernetes.io/last-applied-configuration" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		w.line("<none>")
		return
	}
	for i, k := range keys {
		if i > 0 {
			w.write(0, "\t")
		}
		v := strings.TrimSuffix(m[k], "\n")
		if len(v)+len(k)+2 > maxAnnotationLen || strings.Contains(v, "\n") {
			w.write(0, "%s:\n", k)
			for _, s := range strings.Split(v, "\n") {
				w.write(0, "\t  %s\n", shorten(s, maxAnnotationLen-2))
			}
			continue
		}
		w.write(0, "%s: %s\n", k, v)
	}
}

// shorten cuts s to n characters, marking the cut with "...".
func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// taints writes node taints sorted by effect then key.
func (w *describeWriter) taints(title string, ts []*corralpb.Taint) {
	w.write(0, "%s:\t", title)
	if len(ts) == 0 {
		w.line("<none>")
		return
	}
	sorted := append([]*corralpb.Taint(nil), ts...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return sorted[i].GetEffect()+","+sorted[i].GetKey() < sorted[j].GetEffect()+","+sorted[j].GetKey()
	})
	for i, t := range sorted {
		if i > 0 {
			w.write(0, "\t")
		}
		w.write(0, "%s\n", taintString(t))
	}
}

// tolerations writes tolerations sorted by key, as kubectl prints them
// ("key=value:Effect op=Exists for 300s").
func (w *describeWriter) tolerations(title string, tols []*corralpb.Toleration) {
	w.write(0, "%s:\t", title)
	if len(tols) == 0 {
		w.line("<none>")
		return
	}
	sorted := append([]*corralpb.Toleration(nil), tols...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].GetKey() < sorted[j].GetKey() })
	for i, t := range sorted {
		if i > 0 {
			w.write(0, "\t")
		}
		w.write(0, "%s\n", tolerationString(t))
	}
}

// tolerationString renders one toleration.
func tolerationString(t *corralpb.Toleration) string {
	s := t.GetKey()
	if t.GetValue() != "" {
		s += "=" + t.GetValue()
	}
	if t.GetEffect() != "" {
		s += ":" + t.GetEffect()
	}
	if t.GetOperator() == "Exists" && t.GetValue() == "" {
		if t.GetKey() != "" || t.GetEffect() != "" {
			s += " op=Exists"
		} else {
			s += "op=Exists"
		}
	}
	if t.TolerationSeconds != nil {
		s += fmt.Sprintf(" for %ds", t.GetTolerationSeconds())
	}
	return s
}

// events writes the Events table, oldest first, or "Events: <none>".
func (w *describeWriter) events(evs []*corralpb.Event, now time.Time) {
	if len(evs) == 0 {
		w.write(0, "Events:\t<none>\n")
		return
	}
	w.flush()
	sorted := append([]*corralpb.Event(nil), evs...)
	sortEventsByTime(sorted)
	w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
	w.write(1, "----\t------\t----\t----\t-------\n")
	for _, e := range sorted {
		firstTS := e.GetFirstTimestamp()
		if isZeroTime(firstTS) {
			firstTS = e.GetLastTimestamp()
		}
		first := since(firstTS, now)
		interval := first
		if e.GetCount() > 1 {
			interval = fmt.Sprintf("%s (x%d over %s)", since(e.GetLastTimestamp(), now), e.GetCount(), first)
		}
		from := firstNonEmpty(e.GetSource().GetComponent(), e.GetReportingComponent())
		w.write(1, "%v\t%v\t%s\t%v\t%v\n", e.GetType(), e.GetReason(), interval, from, strings.TrimSpace(e.GetMessage()))
	}
}
