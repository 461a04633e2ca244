package confcheck

import (
	"errors"
	"fmt"
)

// FieldError is one problem with one field of a configuration.
type FieldError struct {
	Field  string // the field's name, as its package or the caller names it
	Value  any
	Reason string
}

// Error reads field=value: reason, with a string value quoted so that an
// empty or padded one shows.
func (e *FieldError) Error() string {
	if s, ok := e.Value.(string); ok {
		return fmt.Sprintf("%s=%q: %s", e.Field, s, e.Reason)
	}
	return fmt.Sprintf("%s=%v: %s", e.Field, e.Value, e.Reason)
}

// List collects the problems of one configuration. The zero value is empty
// and ready to use.
type List struct {
	problems []*FieldError
}

// Add records a problem with field, whose value is v.
func (l *List) Add(field string, v any, reason string) {
	l.problems = append(l.problems, &FieldError{Field: field, Value: v, Reason: reason})
}

// Has reports whether a problem with field was added.
func (l *List) Has(field string) bool {
	for _, p := range l.problems {
		if p.Field == field {
			return true
		}
	}
	return false
}

// Err returns nil if nothing was added, else every problem joined
// (errors.Join), each wrapping sentinel and its FieldError.
func (l *List) Err(sentinel error) error {
	if len(l.problems) == 0 {
		return nil
	}
	errs := make([]error, len(l.problems))
	for i, p := range l.problems {
		errs[i] = fmt.Errorf("%w: %w", sentinel, p)
	}
	return errors.Join(errs...)
}

// Fields returns every FieldError in err's tree: through %w wrapping and
// errors.Join, in order.
func Fields(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *FieldError:
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
