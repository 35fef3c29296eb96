package standin

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Main runs the stand-in with args (os.Args: args[0] is the program) and
// returns its exit code: a sub-command when args[1] names one, else the
// HTTP server, which listens on defaultListen ("HOST:PORT,...") unless
// --listen= or $WORKLOAD_LISTEN says otherwise, and only returns when it
// cannot listen.
func Main(args []string, defaultListen string) int {
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		return subcommand(args[1], args[2:])
	}
	return serve(args, defaultListen)
}

func subcommand(cmd string, args []string) int {
	switch cmd {
	case "cat":
		for _, f := range args {
			b, err := os.ReadFile(f)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			os.Stdout.Write(b)
		}
	case "env":
		for _, e := range os.Environ() {
			fmt.Println(e)
		}
	case "sleep":
		d, err := time.ParseDuration(first(args, "1h"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		time.Sleep(d)
	case "touch":
		for _, f := range args {
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
	case "rm":
		for _, f := range args {
			if err := os.Remove(f); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
	case "exit":
		code, _ := strconv.Atoi(first(args, "0"))
		return code
	case "get":
		return get(first(args, ""))
	default:
		fmt.Fprintf(os.Stderr, "workload: unknown command %q\n", cmd)
		return 2
	}
	return 0
}

// get fetches url and prints the status line and the body; it fails
// unless the answer is 2xx.
func get(url string) int {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	fmt.Println(resp.Proto, resp.Status)
	_, _ = io.Copy(os.Stdout, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return 1
	}
	return 0
}

func first(args []string, def string) string {
	if len(args) > 0 {
		return args[0]
	}
	return def
}

func serve(args []string, defaultListen string) int {
	listen := os.Getenv("WORKLOAD_LISTEN")
	for _, a := range args[1:] {
		if v, ok := strings.CutPrefix(a, "--listen="); ok {
			listen = v
		}
	}
	if listen == "" {
		listen = defaultListen
	}
	report(args, listen)
	if mb, _ := strconv.Atoi(os.Getenv("WORKLOAD_ALLOC_MB")); mb > 0 {
		allocate(mb)
	}
	if os.Getenv("WORKLOAD_IGNORE_TERM") != "" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		go func() {
			s := <-ch
			fmt.Printf("workload: got %v, exiting\n", s)
			os.Exit(0)
		}()
	}
	if d, err := time.ParseDuration(os.Getenv("WORKLOAD_EXIT_AFTER")); err == nil && d > 0 {
		code := 1
		if v, err := strconv.Atoi(os.Getenv("WORKLOAD_EXIT_CODE")); err == nil {
			code = v
		}
		time.AfterFunc(d, func() {
			fmt.Printf("workload: exiting with code %d as told\n", code)
			os.Exit(code)
		})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		host, _ := os.Hostname()
		fmt.Fprintf(w, "corral stand-in workload on %s: %s %s\n", host, r.Method, r.URL.Path)
	})
	mux.HandleFunc("/health", fileGate("/tmp/unhealthy", http.StatusInternalServerError))
	mux.HandleFunc("/ready", fileGate("/tmp/unready", http.StatusServiceUnavailable))
	errs := make(chan error, 8)
	for _, addr := range strings.Split(listen, ",") {
		go func(addr string) { errs <- http.ListenAndServe(strings.TrimSpace(addr), mux) }(addr)
	}
	err := <-errs
	fmt.Fprintln(os.Stderr, "workload:", err)
	return 1
}

func fileGate(path string, code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := os.Stat(path); err == nil {
			w.WriteHeader(code)
			fmt.Fprintf(w, "%s present\n", path)
			return
		}
		fmt.Fprintln(w, "ok")
	}
}

// report prints what the program sees, for logs and tests.
func report(args []string, listen string) {
	host, _ := os.Hostname()
	fmt.Printf("workload: pid %d on %s listening on %s\n", os.Getpid(), host, listen)
	fmt.Printf("workload: argv %q\n", args)
	for _, e := range os.Environ() {
		fmt.Printf("workload: env %s\n", e)
	}
	if b, err := os.ReadFile("/proc/self/mounts"); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			fmt.Printf("workload: mount %s\n", line)
		}
	}
}

// allocate touches mb MiB so that it is resident (for memory-limit tests).
func allocate(mb int) {
	chunks := make([][]byte, 0, mb)
	for i := 0; i < mb; i++ {
		c := make([]byte, 1<<20)
		for j := range c {
			c[j] = byte(j)
		}
		chunks = append(chunks, c)
	}
	fmt.Printf("workload: holding %d MiB\n", len(chunks))
	go func() {
		for {
			time.Sleep(time.Hour)
			_ = chunks
		}
	}()
}
