package server

import (
	"context"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// badUTF8Field is an unknown-field number no message uses: the codec parks
// the path of an invalid UTF-8 string there for the interceptor to report.
const badUTF8Field protowire.Number = 536870911

// utf8Codec is the proto codec, except that a request with invalid UTF-8 in
// a string field decodes to an empty message marked with the field's path.
// grpc-go reports every decoding failure as INTERNAL with no field name;
// this lets the interceptor answer INVALID_ARGUMENT naming the field.
type utf8Codec struct{}

func (utf8Codec) Name() string { return proto.Name }

func (utf8Codec) Marshal(v any) (mem.BufferSlice, error) {
	return encoding.GetCodecV2(proto.Name).Marshal(v)
}

func (utf8Codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := encoding.GetCodecV2(proto.Name).Unmarshal(data, v)
	msg, ok := v.(gproto.Message)
	if err == nil || !ok || !strings.Contains(err.Error(), "UTF-8") {
		return err
	}
	path := invalidUTF8Path(data.Materialize(), msg.ProtoReflect().Descriptor(), "")
	if path == "" {
		return err
	}
	gproto.Reset(msg)
	mark := protowire.AppendTag(nil, badUTF8Field, protowire.BytesType)
	msg.ProtoReflect().SetUnknown(protowire.AppendString(mark, path))
	return nil
}

// badUTF8 returns the marked path, if the codec marked the message.
func badUTF8(req any) (string, bool) {
	msg, ok := req.(gproto.Message)
	if !ok {
		return "", false
	}
	b := msg.ProtoReflect().GetUnknown()
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num != badUTF8Field || typ != protowire.BytesType {
		return "", false
	}
	path, m := protowire.ConsumeString(b[n:])
	return path, m >= 0
}

func rejectBadUTF8(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if path, ok := badUTF8(req); ok {
		return nil, status.Errorf(codes.InvalidArgument, "%s: invalid UTF-8", path)
	}
	return h(ctx, req)
}

// invalidUTF8Path walks the wire bytes to find the first string field that
// is not UTF-8, naming it by field names and, inside Structs, by map keys.
func invalidUTF8Path(b []byte, md protoreflect.MessageDescriptor, prefix string) string {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return ""
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if fd := md.Fields().ByNumber(num); fd != nil {
			if p := fieldPath(v, fd, prefix); p != "" {
				return p
			}
		}
	}
	return ""
}

func fieldPath(v []byte, fd protoreflect.FieldDescriptor, prefix string) string {
	name := joinPath(prefix, string(fd.Name()))
	if transparent(fd.ContainingMessage().FullName()) {
		name = prefix
	}
	switch {
	case fd.Kind() == protoreflect.StringKind && !utf8.Valid(v):
		return name
	case fd.IsMap():
		return mapEntryPath(v, fd.MapValue(), name)
	case fd.Kind() == protoreflect.MessageKind:
		return invalidUTF8Path(v, fd.Message(), name)
	}
	return ""
}

// mapEntryPath names a map entry by its key, e.g. args.to.
func mapEntryPath(entry []byte, valueFD protoreflect.FieldDescriptor, prefix string) string {
	key := ""
	for b := entry; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return ""
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		switch {
		case num == 1 && !utf8.Valid(v):
			return joinPath(prefix, "<key>")
		case num == 1:
			key = string(v)
		case num == 2 && valueFD.Kind() == protoreflect.StringKind && !utf8.Valid(v):
			return joinPath(prefix, key)
		case num == 2 && valueFD.Kind() == protoreflect.MessageKind:
			if p := invalidUTF8Path(v, valueFD.Message(), joinPath(prefix, key)); p != "" {
				return p
			}
		}
	}
	return ""
}

// transparent messages add no name of their own to a path.
func transparent(name protoreflect.FullName) bool {
	switch name {
	case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue":
		return true
	}
	return false
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}
