// Command probe is the test image of the runtime's tests: built static into a
// temporary root filesystem, it runs as a container's command and, through Exec,
// reports what it sees from inside.
//
//	probe sleep                  sleep until killed (SIGTERM ends it)
//	probe trap-term              ignore SIGTERM, sleep until killed
//	probe exit N                 exit with code N
//	probe exit-after DUR N       sleep DUR, then exit with code N
//	probe alloc MIB              allocate and touch MIB MiB, then sleep
//	probe echo ARGS...           print the arguments, one per line
//	probe env                    print the environment
//	probe status                 print CapEff and NoNewPrivs of /proc/self/status
//	probe rlimit                 print RLIMIT_NOFILE as "soft hard"
//	probe cat FILE               print FILE
//	probe pwd                    print the working directory
//	probe stat FILE              print "char MAJ:MIN", "dir", "file SIZE" ...
//	probe write FILE DATA        write DATA to FILE
//	probe mknod PATH MAJ MIN     create a character device node
//	probe open PATH              open PATH read-write
//	probe hostname               print the hostname
//	probe ifaces                 print the network interfaces' names
//	probe listen ADDR            serve "hello" to every TCP connection on ADDR
//	probe dial ADDR              print what the server at ADDR sends
//	probe shmget KEY             create a SysV shared memory segment
//	probe keyctl                 join a new session keyring (Docker's default seccomp profile denies keyctl)
//	probe seccomp                print the Seccomp mode of /proc/self/status (0 none, 2 filter)
//
// Errors go to stderr with exit code 1.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: probe COMMAND [ARGS...]"))
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "probe:", err)
	os.Exit(1)
}

func run(cmd string, args []string) error {
	if f, ok := commands[cmd]; ok {
		return f(args)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

var commands = map[string]func(args []string) error{
	"sleep":     func([]string) error { sleepForever(); return nil },
	"trap-term": func([]string) error { signal.Ignore(syscall.SIGTERM); sleepForever(); return nil },
	"exit":      func(args []string) error { os.Exit(atoi(args, 0)); return nil },
	"exit-after": func(args []string) error {
		d, err := time.ParseDuration(arg(args, 0))
		if err != nil {
			return err
		}
		time.Sleep(d)
		os.Exit(atoi(args, 1))
		return nil
	},
	"alloc": func(args []string) error { return alloc(atoi(args, 0)) },
	"echo": func(args []string) error {
		for _, a := range args {
			fmt.Println(a)
		}
		return nil
	},
	"env": func([]string) error {
		for _, e := range os.Environ() {
			fmt.Println(e)
		}
		return nil
	},
	"status": func([]string) error { return status() },
	"rlimit": func([]string) error {
		var l unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &l); err != nil {
			return err
		}
		fmt.Println(l.Cur, l.Max)
		return nil
	},
	"cat": func(args []string) error {
		b, err := os.ReadFile(arg(args, 0))
		os.Stdout.Write(b)
		return err
	},
	"pwd": func([]string) error {
		d, err := os.Getwd()
		fmt.Println(d)
		return err
	},
	"stat":  func(args []string) error { return stat(arg(args, 0)) },
	"write": func(args []string) error { return os.WriteFile(arg(args, 0), []byte(arg(args, 1)), 0o644) },
	"mknod": func(args []string) error {
		dev := unix.Mkdev(uint32(atoi(args, 1)), uint32(atoi(args, 2)))
		return unix.Mknod(arg(args, 0), unix.S_IFCHR|0o600, int(dev))
	},
	"open": func(args []string) error {
		f, err := os.OpenFile(arg(args, 0), os.O_RDWR, 0)
		if err != nil {
			return err
		}
		return f.Close()
	},
	"hostname": func([]string) error {
		h, err := os.Hostname()
		fmt.Println(h)
		return err
	},
	"ifaces": func([]string) error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			fmt.Println(i.Name)
		}
		return err
	},
	"listen": func(args []string) error { return listen(arg(args, 0)) },
	"dial":   func(args []string) error { return dial(arg(args, 0)) },
	"shmget": func(args []string) error {
		_, err := unix.SysvShmGet(atoi(args, 0), 4096, unix.IPC_CREAT|0o600)
		return err
	},
	"keyctl": func([]string) error {
		_, err := unix.KeyctlJoinSessionKeyring("probe")
		return err
	},
	"seccomp": func([]string) error {
		data, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
				fmt.Println(strings.TrimSpace(v))
				return nil
			}
		}
		return fmt.Errorf("no Seccomp line in /proc/self/status")
	},
}

func arg(args []string, i int) string {
	if i >= len(args) {
		fail(fmt.Errorf("missing argument %d", i+1))
	}
	return args[i]
}

func atoi(args []string, i int) int {
	n, err := strconv.Atoi(arg(args, i))
	if err != nil {
		fail(err)
	}
	return n
}

func status() error {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "CapEff:") || strings.HasPrefix(line, "NoNewPrivs:") {
			fmt.Println(line)
		}
	}
	return sc.Err()
}

func stat(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		fmt.Printf("char %d:%d\n", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	case unix.S_IFDIR:
		fmt.Println("dir")
	case unix.S_IFREG:
		fmt.Println("file", st.Size)
	default:
		fmt.Printf("mode %o\n", st.Mode)
	}
	return nil
}

func alloc(mib int) error {
	var chunks [][]byte
	for i := 0; i < mib; i++ {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(j)
		}
		chunks = append(chunks, b)
	}
	fmt.Println("allocated", len(chunks), "MiB")
	sleepForever()
	return nil
}

// sleepForever blocks until a signal ends the process. (An empty select would be
// reported as a deadlock by the Go runtime.)
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

func listen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("listening on", addr)
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		io.WriteString(c, "hello\n")
		c.Close()
	}
}

func dial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = io.Copy(os.Stdout, c)
	return err
}
