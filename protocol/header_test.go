package protocol

import (
	"bytes"
	"errors"
	"testing"
)

func TestAppendHeaderLayout(t *testing.T) {
	tests := []struct {
		name string
		h    Header
		want []byte
	}{
		{
			name: "zero",
			h:    Header{},
			want: []byte{0xC5, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		},
		{
			name: "request",
			h:    Header{Opcode: OpSet, ReqID: 0x0102030405060708, Len: 0x0A0B0C0D},
			want: []byte{0xC5, 1, 0x04, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 0x0A, 0x0B, 0x0C, 0x0D},
		},
		{
			name: "error response",
			h:    Header{Opcode: OpError, Flags: FlagResponse, ReqID: 7, Len: 3},
			want: []byte{0xC5, 1, 0x3F, 0x01, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 3},
		},
		{
			name: "all ones",
			h:    Header{Opcode: 0xFF, Flags: 0xFF, ReqID: ^uint64(0), Len: ^uint32(0)},
			want: append([]byte{0xC5, 1}, bytes.Repeat([]byte{0xFF}, 14)...),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendHeader(nil, tt.h)
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("AppendHeader = % x, want % x", got, tt.want)
			}
			prefix := []byte("prefix")
			got = AppendHeader(prefix, tt.h)
			if !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], tt.want) {
				t.Fatalf("AppendHeader after a prefix = % x", got)
			}
		})
	}
}

// header builds raw header bytes with the given magic and version, which
// AppendHeader always sets correctly.
func header(magic, version byte, h Header) []byte {
	b := AppendHeader(nil, h)
	b[0], b[1] = magic, version
	return b
}

func TestParseHeader(t *testing.T) {
	const limit = 1000
	valid := Header{Opcode: OpGet, Flags: FlagResponse, ReqID: 0xDEADBEEF, Len: 12}
	tests := []struct {
		name     string
		in       []byte
		want     Header
		wantErr  error
		wantCode Code
	}{
		{name: "valid", in: AppendHeader(nil, valid), want: valid},
		{name: "longer input is fine", in: append(AppendHeader(nil, valid), 1, 2, 3), want: valid},
		{name: "body at limit", in: AppendHeader(nil, Header{Opcode: OpSet, Len: limit}), want: Header{Opcode: OpSet, Len: limit}},
		{name: "empty body", in: AppendHeader(nil, Header{Opcode: OpPing, ReqID: 1}), want: Header{Opcode: OpPing, ReqID: 1}},
		{
			name: "reserved flag bits are kept",
			in:   AppendHeader(nil, Header{Opcode: OpDel, Flags: 0xFE, ReqID: 3}),
			want: Header{Opcode: OpDel, Flags: 0xFE, ReqID: 3},
		},
		{name: "nil", in: nil, wantErr: ErrShortHeader, wantCode: CodeProtocol},
		{name: "one byte short", in: AppendHeader(nil, valid)[:HeaderSize-1], wantErr: ErrShortHeader, wantCode: CodeProtocol},
		{name: "bad magic", in: header(0xC4, Version, valid), wantErr: ErrBadMagic, wantCode: CodeProtocol},
		{name: "zero magic", in: header(0, Version, valid), wantErr: ErrBadMagic, wantCode: CodeProtocol},
		{name: "version 0", in: header(Magic, 0, valid), wantErr: ErrBadVersion, wantCode: CodeProtocol},
		{name: "version 2", in: header(Magic, 2, valid), wantErr: ErrBadVersion, wantCode: CodeProtocol},
		{
			name:    "opcode 0",
			in:      AppendHeader(nil, Header{Opcode: 0, ReqID: 9}),
			want:    Header{Opcode: 0, ReqID: 9},
			wantErr: ErrUnknownOpcode, wantCode: CodeUnknownOp,
		},
		{
			name:    "opcode after incr",
			in:      AppendHeader(nil, Header{Opcode: OpIncr + 1, ReqID: 9}),
			want:    Header{Opcode: OpIncr + 1, ReqID: 9},
			wantErr: ErrUnknownOpcode, wantCode: CodeUnknownOp,
		},
		{
			name:    "opcode 0xFF",
			in:      AppendHeader(nil, Header{Opcode: 0xFF, Flags: FlagResponse, ReqID: 9, Len: 1}),
			want:    Header{Opcode: 0xFF, Flags: FlagResponse, ReqID: 9, Len: 1},
			wantErr: ErrUnknownOpcode, wantCode: CodeUnknownOp,
		},
		{
			name:    "body one over limit",
			in:      AppendHeader(nil, Header{Opcode: OpSet, ReqID: 5, Len: limit + 1}),
			want:    Header{Opcode: OpSet, ReqID: 5, Len: limit + 1},
			wantErr: ErrFrameTooLarge, wantCode: CodeTooLarge,
		},
		{
			name:    "4 GiB body",
			in:      AppendHeader(nil, Header{Opcode: OpSet, ReqID: 5, Len: ^uint32(0)}),
			want:    Header{Opcode: OpSet, ReqID: 5, Len: ^uint32(0)},
			wantErr: ErrFrameTooLarge, wantCode: CodeTooLarge,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHeader(tt.in, limit)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("ParseHeader error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("ParseHeader = %+v, want %+v", got, tt.want)
			}
			if err != nil {
				if code := CodeOf(err); code != tt.wantCode {
					t.Fatalf("CodeOf(%v) = %v, want %v", err, code, tt.wantCode)
				}
			}
		})
	}
}

func TestParseHeaderEveryKnownOpcode(t *testing.T) {
	for op := range 256 {
		h := Header{Opcode: Opcode(op), ReqID: uint64(op) << 32, Len: uint32(op)}
		got, err := ParseHeader(AppendHeader(nil, h), DefaultMaxBody)
		if Opcode(op).Known() {
			if err != nil || got != h {
				t.Fatalf("opcode %#x: ParseHeader = %+v, %v; want %+v", op, got, err, h)
			}
		} else if !errors.Is(err, ErrUnknownOpcode) {
			t.Fatalf("opcode %#x: error %v, want ErrUnknownOpcode", op, err)
		}
	}
}

func TestOpcodes(t *testing.T) {
	// The wire values are a contract: this table is the one in SPEC.md.
	want := map[Opcode]string{
		0x01: "hello", 0x02: "ping", 0x03: "get", 0x04: "set", 0x05: "del", 0x06: "incr",
		0x3F: "error", 0x41: "peer-link", 0x80: "status", 0x81: "digest", 0x82: "log-level",
		0x83: "members", 0x84: "slow-threshold", 0x85: "cascade-status", 0x86: "cascade-parent",
		0x87: "backup",
	}
	for op := range 256 {
		name, known := want[Opcode(op)]
		if !known {
			name = "unknown"
		}
		if got := Opcode(op).Known(); got != known {
			t.Errorf("Opcode(%#x).Known() = %v, want %v", op, got, known)
		}
		if got := Opcode(op).String(); got != name {
			t.Errorf("Opcode(%#x).String() = %q, want %q", op, got, name)
		}
	}
}

func TestHeaderIsResponse(t *testing.T) {
	tests := []struct {
		flags Flags
		want  bool
	}{{0, false}, {FlagResponse, true}, {0xFE, false}, {0xFF, true}}
	for _, tt := range tests {
		if got := (Header{Flags: tt.flags}).IsResponse(); got != tt.want {
			t.Errorf("flags %#x: IsResponse = %v, want %v", tt.flags, got, tt.want)
		}
	}
}

func TestCodes(t *testing.T) {
	// The wire values are a contract: this table is the one in SPEC.md.
	tests := []struct {
		code  Code
		value uint16
		name  string
	}{
		{CodeInternal, 1, "internal"},
		{CodeNotFound, 2, "not found"},
		{CodeTooLarge, 3, "too large"},
		{CodeBadRequest, 4, "bad request"},
		{CodeUnavailable, 5, "unavailable"},
		{CodeTimeout, 6, "timeout"},
		{CodeWrongType, 7, "wrong type"},
		{CodeUnauthorized, 8, "unauthorized"},
		{CodeUnknownOp, 9, "unknown operation"},
		{CodeProtocol, 10, "protocol error"},
		{0, 0, "code 0"},
		{CodeScopeUnavailable, 11, "scope unavailable"},
		{CodeBadContext, 12, "bad context"},
		{13, 13, "code 13"},
	}
	for _, tt := range tests {
		if uint16(tt.code) != tt.value {
			t.Errorf("%s = %d, want %d", tt.name, uint16(tt.code), tt.value)
		}
		if got := tt.code.String(); got != tt.name {
			t.Errorf("Code(%d).String() = %q, want %q", tt.value, got, tt.name)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{Code: CodeNotFound}, "upu: not found"},
		{Error{Code: CodeTooLarge, Message: "value of 2000000 bytes, limit 1048576"}, "upu: too large: value of 2000000 bytes, limit 1048576"},
		{Error{Code: CodeInternal, ReqID: "abc"}, "upu: internal (req_id abc)"},
		{Error{Code: CodeTimeout, Message: "replica slow", ReqID: "abc"}, "upu: timeout: replica slow (req_id abc)"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestCodeOf(t *testing.T) {
	tests := []struct {
		err  error
		want Code
	}{
		{ErrShortHeader, CodeProtocol},
		{ErrBadMagic, CodeProtocol},
		{ErrBadVersion, CodeProtocol},
		{ErrUnknownOpcode, CodeUnknownOp},
		{ErrFrameTooLarge, CodeTooLarge},
		{ErrBadBody, CodeBadRequest},
		{DecodeBody([]byte{0xC1}, new(GetRequest)), CodeBadRequest},
		{errors.New("disk on fire"), CodeInternal},
	}
	for _, tt := range tests {
		if got := CodeOf(tt.err); got != tt.want {
			t.Errorf("CodeOf(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
