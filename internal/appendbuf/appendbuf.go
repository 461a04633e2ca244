// Package appendbuf owns Writer, the io.Writer that lets a msgpack encoder
// append to a caller's slice. It has WriteByte and WriteString because
// without them the encoder wraps a writer in an adapter that allocates for
// every byte written.
package appendbuf

// Writer appends everything written to B; writes never fail.
type Writer struct{ B []byte }

func (w *Writer) Write(p []byte) (int, error) {
	w.B = append(w.B, p...)
	return len(p), nil
}

func (w *Writer) WriteByte(c byte) error {
	w.B = append(w.B, c)
	return nil
}

func (w *Writer) WriteString(s string) (int, error) {
	w.B = append(w.B, s...)
	return len(s), nil
}
