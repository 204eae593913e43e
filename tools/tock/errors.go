package main

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// usageError is a wrong command line: a flag value that does not parse, flags that cannot
// go together, a missing argument. It exits with code 2 and a usage hint.
type usageError struct {
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// codeWords names each gRPC code in words, as printed in error lines.
var codeWords = map[codes.Code]string{
	codes.OK:                 "ok",
	codes.Canceled:           "cancelled",
	codes.Unknown:            "unknown error",
	codes.InvalidArgument:    "invalid argument",
	codes.DeadlineExceeded:   "deadline exceeded",
	codes.NotFound:           "not found",
	codes.AlreadyExists:      "already exists",
	codes.PermissionDenied:   "permission denied",
	codes.ResourceExhausted:  "resource exhausted",
	codes.FailedPrecondition: "failed precondition",
	codes.Aborted:            "aborted",
	codes.OutOfRange:         "out of range",
	codes.Unimplemented:      "unimplemented",
	codes.Internal:           "internal error",
	codes.Unavailable:        "unavailable",
	codes.DataLoss:           "data loss",
	codes.Unauthenticated:    "unauthenticated",
}

// codeInWords names a gRPC code for people: "not found", "invalid argument".
func codeInWords(c codes.Code) string {
	if w, ok := codeWords[c]; ok {
		return w
	}
	return fmt.Sprintf("code %d", uint32(c))
}

// formatError renders an error for stderr:
//
//	tock: <code in words>: <message>          for a gRPC status (with a hint when the
//	                                          server did not speak gRPC)
//	tock: unavailable: cannot reach ... hint  when no connection could be made
//	tock: <error>                             otherwise
func formatError(err error) string {
	var unreachable *UnreachableError
	if errors.As(err, &unreachable) {
		return fmt.Sprintf("tock: %s: %s\n"+
			"Is tockd running there? Start one with `make run`, or point --server (or %s) at a running control plane.",
			codeInWords(status.Code(unreachable.Err)), clean(unreachable.Error()), envServer)
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) && se.GRPCStatus() != nil {
		s := se.GRPCStatus()
		msg := strings.TrimSpace(clean(s.Message()))
		if msg == "" {
			return "tock: " + codeInWords(s.Code())
		}
		line := fmt.Sprintf("tock: %s: %s", codeInWords(s.Code()), msg)
		if strings.Contains(msg, "unexpected HTTP status code") {
			// Something answered, but not with gRPC: often the REST port or a proxy.
			line += "\nIs --server the control plane's gRPC address (not its HTTP one)?"
		}
		return line
	}
	return "tock: " + clean(err.Error())
}
