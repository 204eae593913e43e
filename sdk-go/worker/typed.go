package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"reflect"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// HandleTyped registers fn as the handler called name, with its input decoded into In and its
// output encoded from Out. (Go methods cannot have type parameters, so this is a function of
// the Worker rather than a method.)
//
// Decoding follows the payload's content type:
//
//   - JSON ("application/json", any "+json" type, or no content type at all, which is what the
//     REST API sends for a job without a payload): encoding/json, or protojson when In is a
//     protobuf message (unknown fields are ignored by both);
//   - protobuf ("application/x-protobuf", "application/protobuf" or
//     "application/vnd.google.protobuf"): proto.Unmarshal, when In is a protobuf message.
//
// An empty payload decodes to In's zero value, or an empty message when In is a protobuf
// message. A payload that does not decode fails the execution, without calling fn, with a
// non-retryable *Error of kind "InvalidPayload" whose message names the content type, In and
// the decode error.
//
// The output is encoded to match the input: binary protobuf ("application/x-protobuf") when
// Out is a protobuf message and the input was binary protobuf, JSON ("application/json")
// otherwise, compact, through protojson for protobuf messages. An output that cannot be
// encoded fails the execution with a non-retryable *Error of kind "InvalidResult". Use Handle
// for raw bytes in and out.
//
// HandleTyped panics like Handle.
func HandleTyped[In, Out any](w *Worker, name string, fn func(ctx context.Context, in In) (Out, error)) {
	if fn == nil {
		panic(fmt.Sprintf("worker: HandleTyped(%q) called with a nil function", name))
	}
	w.register(name, typedFunc(fn))
}

// Content types of protobuf payloads.
const contentTypeProtobuf = "application/x-protobuf"

// protobufTypes are the media types read as binary protobuf.
var protobufTypes = map[string]bool{
	contentTypeProtobuf:               true,
	"application/protobuf":            true,
	"application/vnd.google.protobuf": true,
}

// Error kinds of typed handlers.
const (
	kindInvalidPayload = "InvalidPayload"
	kindInvalidResult  = "InvalidResult"
)

// format is how a payload is encoded.
type format int

const (
	formatUnknown format = iota
	formatJSON
	formatProtobuf
)

// formatOf reads a content type; parameters such as charset are ignored.
func formatOf(contentType string) format {
	if contentType == "" {
		return formatJSON
	}
	mt, _, err := mime.ParseMediaType(contentType)
	switch {
	case err != nil:
		return formatUnknown
	case mt == contentTypeJSON || strings.HasSuffix(mt, "+json"):
		return formatJSON
	case protobufTypes[mt]:
		return formatProtobuf
	default:
		return formatUnknown
	}
}

func typedFunc[In, Out any](fn func(context.Context, In) (Out, error)) ExecuteFunc {
	return func(ctx context.Context, p Payload) (Payload, error) {
		f := formatOf(p.ContentType)
		in, err := decode[In](p.Data, f)
		if err != nil {
			ct := p.ContentType
			if ct == "" {
				ct = "JSON"
			}
			return Payload{}, &Error{
				Kind:    kindInvalidPayload,
				Message: fmt.Sprintf("decode the %s payload into %s", ct, typeName[In]()),
				Err:     err,
			}
		}
		out, err := fn(ctx, in)
		if err != nil {
			return Payload{}, err
		}
		res, err := encode(out, f)
		if err != nil {
			return Payload{}, &Error{
				Kind:    kindInvalidResult,
				Message: fmt.Sprintf("encode the handler's %s output", typeName[Out]()),
				Err:     err,
			}
		}
		return res, nil
	}
}

// decode decodes data in format f into a new In.
func decode[In any](data []byte, f format) (In, error) {
	var in In
	msg, isProto := any(in).(proto.Message)
	if isProto {
		// A nil message of a generated type still knows its type: make an empty one.
		msg = msg.ProtoReflect().Type().New().Interface()
		in = msg.(In)
	}
	if len(data) == 0 {
		return in, nil
	}
	switch {
	case f == formatJSON && isProto:
		return in, protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, msg)
	case f == formatJSON:
		return in, json.Unmarshal(data, &in)
	case f == formatProtobuf && isProto:
		return in, proto.Unmarshal(data, msg)
	case f == formatProtobuf:
		return in, fmt.Errorf("%s is not a protobuf message", typeName[In]())
	default:
		return in, fmt.Errorf("unsupported content type; send JSON or protobuf")
	}
}

// encode encodes out to answer an input in format f.
func encode[Out any](out Out, f format) (Payload, error) {
	if msg, ok := any(out).(proto.Message); ok {
		if f == formatProtobuf {
			data, err := proto.Marshal(msg)
			return Payload{Data: data, ContentType: contentTypeProtobuf}, err
		}
		data, err := protojson.Marshal(msg)
		if err != nil {
			return Payload{}, err
		}
		// protojson varies its whitespace on purpose; compact it so that outputs are stable.
		var buf bytes.Buffer
		if err := json.Compact(&buf, data); err != nil {
			return Payload{}, err
		}
		return Payload{Data: buf.Bytes(), ContentType: contentTypeJSON}, nil
	}
	data, err := json.Marshal(out)
	return Payload{Data: data, ContentType: contentTypeJSON}, err
}

// typeName names T as Go code does, such as "main.order" or "*orderv1.Order".
func typeName[T any]() string { return reflect.TypeFor[T]().String() }
