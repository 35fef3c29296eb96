package standin

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestSubcommands(t *testing.T) {
	f := filepath.Join(t.TempDir(), "flag")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ok" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	cases := []struct {
		args []string
		want int
	}{
		{[]string{"standin", "exit", "3"}, 3},
		{[]string{"standin", "touch", f}, 0},
		{[]string{"standin", "cat", f}, 0},
		{[]string{"standin", "rm", f}, 0},
		{[]string{"standin", "cat", f}, 1},
		{[]string{"standin", "sleep", "1ms"}, 0},
		{[]string{"standin", "nonsense"}, 2},
		{[]string{"standin", "get", srv.URL + "/ok"}, 0},
		{[]string{"standin", "get", srv.URL + "/down"}, 1},
		{[]string{"standin", "get", "http://127.0.0.1:1/"}, 1},
	}
	for _, c := range cases {
		if got := Main(c.args, TestListen); got != c.want {
			t.Errorf("Main(%q) = %d, want %d", c.args, got, c.want)
		}
	}
}

func TestServeReturnsWhenItCannotListen(t *testing.T) {
	t.Setenv("WORKLOAD_LISTEN", "")
	stdout := os.Stdout
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout = devnull
	defer func() { os.Stdout = stdout; devnull.Close() }()
	if got := Main([]string{"standin", "--listen=256.0.0.1:1"}, TestListen); got != 1 {
		t.Fatalf("Main with an address it cannot listen on = %d, want 1", got)
	}
}
