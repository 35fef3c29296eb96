package containerinit

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// ErrMalformedLogLine is returned by ParseLogLine for a line that is not
// "<RFC 3339 time> <stdout|stderr> <F|P> <text>".
var ErrMalformedLogLine = errors.New("malformed CRI log line")

// LogLine is one entry of a CRI log file.
type LogLine struct {
	// Time is when the init read the text from the pipe.
	Time time.Time
	// Stream is "stdout" or "stderr".
	Stream string
	// Partial is true for a "P" entry: the line goes on in the next entry
	// of the same stream.
	Partial bool
	// Message is the text, without the newline.
	Message []byte
}

// ParseLogLine parses one line of container.log, with or without its
// newline. The returned Message is a copy.
func ParseLogLine(line []byte) (LogLine, error) {
	l, err := parseLine(line)
	if err != nil {
		return LogLine{}, err
	}
	l.Message = bytes.Clone(l.Message)
	return l, nil
}

// parseLine is ParseLogLine without the copy: Message aliases line.
func parseLine(line []byte) (LogLine, error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	ts, rest, ok1 := bytes.Cut(line, []byte{' '})
	stream, rest, ok2 := bytes.Cut(rest, []byte{' '})
	tag, msg, _ := bytes.Cut(rest, []byte{' '}) // an empty line may lack the space
	if !ok1 || !ok2 {
		return LogLine{}, badLine(line)
	}
	var l LogLine
	switch string(stream) {
	case "stdout":
		l.Stream = "stdout"
	case "stderr":
		l.Stream = "stderr"
	default:
		return LogLine{}, badLine(line)
	}
	switch string(tag) {
	case "F":
	case "P":
		l.Partial = true
	default:
		return LogLine{}, badLine(line)
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return LogLine{}, badLine(line)
	}
	l.Time, l.Message = t, msg
	return l, nil
}

func badLine(line []byte) error {
	const max = 80
	if len(line) > max {
		line = line[:max]
	}
	return fmt.Errorf("%w: %q", ErrMalformedLogLine, line)
}

// streamIndex maps the two streams to 0 and 1 for per-stream state.
func streamIndex(stream string) int {
	if stream == "stderr" {
		return 1
	}
	return 0
}
