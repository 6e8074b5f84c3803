package labels

import (
	"errors"
	"fmt"
)

// ErrNotEnabled is returned (wrapped) by Parse when the enable label is absent
// or false. It is not a configuration error: the container is simply not
// sleeper's to manage, so callers skip it without logging.
var ErrNotEnabled = errors.New("container is not enabled")

// Error is one rejected label. Parse collects every Error it finds, sorts them
// by Key and joins them with errors.Join, so that a user fixes all of them in
// one round: errors.As finds the first, Errors lists them all.
type Error struct {
	Key    string // full label key including the prefix, e.g. "sleeper.port"
	Value  string // the value exactly as given, before trimming
	Reason string // why it was rejected: lower-case, no trailing period
}

// Error reads like `label sleeper.port="abc": not a port number (1-65535)`,
// naming the full key, the value and the reason so that one log line is
// enough to fix the label.
func (e *Error) Error() string {
	return fmt.Sprintf("label %s=%q: %s", e.Key, e.Value, e.Reason)
}

// Errors returns every *Error in err's tree, depth first, in the order Parse
// sorted them. It is for callers that report labels one by one (the API, a
// metric) instead of printing the joined message.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *Error:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}
