package resp

import "errors"

// Protocol errors, returned by Reader.Next. Unlike UPU's other errors they
// carry no "upu:" prefix: each Error text is exactly what redis sends after
// the '-' for the same input, so a server replies with
// Writer.AppendError(err.Error()) and clients see what they would see from
// redis. After any of these the stream cannot be resynchronised: the server
// replies, flushes and closes the connection.
var (
	ErrTooBigInline           = errors.New("ERR Protocol error: too big inline request")
	ErrUnbalancedQuotes       = errors.New("ERR Protocol error: unbalanced quotes in request")
	ErrTooBigMultibulkCount   = errors.New("ERR Protocol error: too big mbulk count string")
	ErrInvalidMultibulkLength = errors.New("ERR Protocol error: invalid multibulk length")
	ErrTooBigBulkCount        = errors.New("ERR Protocol error: too big bulk count string")
	ErrInvalidBulkLength      = errors.New("ERR Protocol error: invalid bulk length")
	// ErrExpectedDollar is matched (with errors.Is) by the
	// *ExpectedDollarError that Next returns; its own text is never sent.
	ErrExpectedDollar = errors.New("ERR Protocol error: expected '$'")
)

// ExpectedDollarError reports a multibulk argument that does not start with
// '$'. Got is the byte found instead.
type ExpectedDollarError struct{ Got byte }

// Error is redis' text. A CR or LF is shown as a space, as redis does, so
// that the error reply stays one line.
func (e *ExpectedDollarError) Error() string {
	got := e.Got
	if got == '\r' || got == '\n' {
		got = ' '
	}
	return "ERR Protocol error: expected '$', got '" + string([]byte{got}) + "'"
}

func (e *ExpectedDollarError) Unwrap() error { return ErrExpectedDollar }
