package resp

// splitInline splits an inline command line into arguments the way redis'
// sdssplitargs does, appending them to args: words are separated by spaces,
// tabs or CRs; "..." may contain \xHH and \n \r \t \b \a escapes (any other
// escaped byte stands for itself); '...' may contain \'; a closing quote must
// be followed by a space or the end of the line. One difference: a NUL byte
// is an ordinary byte here, where redis would end the line at it.
//
// Unescaping never lengthens a word, so it is done in place: each argument
// is a slice of line.
func splitInline(line []byte, args [][]byte) ([][]byte, error) {
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return args, nil
		}
		w := i // next byte of the word goes to line[w]
		start := w
		inDouble, inSingle := false, false
	word:
		for i < len(line) {
			c := line[i]
			switch {
			case inDouble:
				switch {
				case c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
					line[w] = unhex(line[i+2])<<4 | unhex(line[i+3])
					i += 4
				case c == '\\' && i+1 < len(line):
					line[w] = unescape(line[i+1])
					i += 2
				case c == '"':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return args, ErrUnbalancedQuotes
					}
					inDouble = false
					i++
					break word
				default:
					line[w] = c
					i++
				}
				w++
			case inSingle:
				switch {
				case c == '\\' && i+1 < len(line) && line[i+1] == '\'':
					line[w] = '\''
					i += 2
				case c == '\'':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return args, ErrUnbalancedQuotes
					}
					inSingle = false
					i++
					break word
				default:
					line[w] = c
					i++
				}
				w++
			default:
				i++
				switch c {
				case ' ', '\r', '\t':
					break word
				case '"':
					inDouble = true
				case '\'':
					inSingle = true
				default:
					line[w] = c
					w++
				}
			}
		}
		if inDouble || inSingle {
			return args, ErrUnbalancedQuotes
		}
		args = append(args, line[start:w:w])
	}
}

// isSpace is C's isspace in the C locale, which redis uses between words.
func isSpace(c byte) bool {
	return c == ' ' || c >= '\t' && c <= '\r'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}
