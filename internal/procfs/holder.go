package procfs

import "fmt"

// Holder is a process that holds a socket.
type Holder struct {
	PID     int
	Command string // its command line, arguments separated by spaces
}

// String formats h as "process 123 (sleep 60)".
func (h Holder) String() string { return fmt.Sprintf("process %d (%s)", h.PID, h.Command) }
