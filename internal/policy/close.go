package policy

import "fmt"

// LogClose logs, through logf (a grpclog ERROR), what a policy's
// subconn.Manager.Close returned: the subchannels the policy still held when
// it closed, each a leak the close has just released. format and args say
// which policy; a nil err logs nothing.
//
//	policy.LogClose(logger.Errorf, b.m.Close(), "%s", b.name)
func LogClose(logf func(format string, args ...any), err error, format string, args ...any) {
	if err != nil {
		logf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}
