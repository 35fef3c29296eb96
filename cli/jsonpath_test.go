package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

func TestSortBy(t *testing.T) {
	mk := func(name string, lastAgo time.Duration, count int32) *corralpb.Object {
		ev := seedEvent(name)
		ev.Metadata.Name = name
		ev.LastTimestamp = ago(lastAgo)
		ev.Count = count
		return api.Wrap(ev)
	}
	noTime := mk("d", 0, 7)
	noTime.GetEvent().LastTimestamp = nil
	cases := []struct {
		path string
		want string
	}{
		{".lastTimestamp", "d c a b"},
		{"{.lastTimestamp}", "d c a b"},
		{"lastTimestamp", "d c a b"},
		{".metadata.name", "a b c d"},
		{".count", "c d a b"},
	}
	for _, c := range cases {
		items := []*corralpb.Object{mk("b", time.Second, 10), mk("a", time.Minute, 9), mk("c", time.Hour, 2), noTime}
		if err := sortObjects(items, c.path); err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		var names []string
		for _, o := range items {
			names = append(names, api.Meta(o).GetName())
		}
		if got := strings.Join(names, " "); got != c.want {
			t.Errorf("--sort-by=%s: %s, want %s", c.path, got, c.want)
		}
	}
	if err := sortObjects(nil, ".a[x"); err == nil {
		t.Error("bad path accepted")
	}
}

func TestLessValueNumbersNumerically(t *testing.T) {
	if !lessValue(float64(9), float64(10)) || lessValue("10", "9") == false {
		t.Fatal("numbers must sort numerically and strings lexically")
	}
	if !lessValue(nil, "a") || lessValue("a", nil) {
		t.Fatal("missing values sort first")
	}
}

func TestJSONPathTemplate(t *testing.T) {
	var doc any
	if err := json.Unmarshal([]byte(`{"kind":"List","items":[
		{"metadata":{"name":"a","labels":{"app.kubernetes.io/name":"x"}},"spec":{"nodeName":"n1"},"status":{"count":3}},
		{"metadata":{"name":"b"},"spec":{"nodeName":"n2"},"status":{"count":4.5}}]}`), &doc); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ tmpl, want string }{
		{"{.items[*].metadata.name}", "a b"},
		{"{.items[0].spec.nodeName}", "n1"},
		{"{.items[-1].metadata.name}", "b"},
		{`{range .items[*]}{.metadata.name}{"\t"}{.spec.nodeName}{"\n"}{end}`, "a\tn1\nb\tn2\n"},
		{"{.items[*].status.count}", "3 4.5"},
		{"{.items[0].metadata.labels['app.kubernetes.io/name']}", "x"},
		{"name={.items[1].metadata.name}!", "name=b!"},
		{"{.kind}", "List"},
		{"{.items[0].missing}", ""},
	}
	for _, c := range cases {
		tm, err := parseTemplate(c.tmpl)
		if err != nil {
			t.Errorf("%s: %v", c.tmpl, err)
			continue
		}
		if got := tm.execute(doc); got != c.want {
			t.Errorf("%s: %q, want %q", c.tmpl, got, c.want)
		}
	}
	for _, bad := range []string{"{.a", "{range .items[*]}{.x}", "{end}", "{.a[zz]}"} {
		if _, err := parseTemplate(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCustomColumnsSpec(t *testing.T) {
	if _, err := parseCustomColumns("NAME:.metadata.name,NODE:.spec.nodeName"); err != nil {
		t.Fatal(err)
	}
	if _, err := parseCustomColumns("NAME"); err == nil || !strings.Contains(err.Error(), "expected <header>:<json-path-expr>") {
		t.Fatalf("bad spec: %v", err)
	}
	f := &outputFlags{output: "xml"}
	if _, err := f.newPrinter(); err == nil || !strings.Contains(err.Error(), `unable to match a printer suitable for the output format "xml"`) {
		t.Fatalf("unknown format: %v", err)
	}
}
