package containerinit

// The init is C in init.c: a constructor that runs before the Go runtime
// starts. Importing "C" compiles and links it into every binary that
// imports this package.

// #cgo CFLAGS: -Wall -Wextra -O2
import "C"
