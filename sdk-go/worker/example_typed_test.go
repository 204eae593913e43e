package worker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/tockhq/tock/sdk-go/worker"
	"github.com/tockhq/tock/sdk-go/worker/workertest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type resizeInput struct {
	Image string `json:"image"`
	Width int    `json:"width"`
}

type resizeOutput struct {
	Thumbnail string `json:"thumbnail"`
}

// A typed handler declares its input and output types; the worker decodes the payload and
// encodes the result, here as JSON.
func ExampleHandleTyped() {
	w := worker.New(worker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	worker.HandleTyped(w, "resize", func(ctx context.Context, in resizeInput) (resizeOutput, error) {
		if in.Width <= 0 {
			return resizeOutput{}, &worker.Error{Kind: "InvalidInput", Message: "width must be positive"}
		}
		return resizeOutput{Thumbnail: fmt.Sprintf("%s@%dw", in.Image, in.Width)}, nil
	})

	agent := workertest.Serve(w, workertest.Options{})
	defer agent.Close()
	for _, payload := range []string{
		`{"image": "cat.png", "width": 128}`,
		`{"image": "cat.png", "width": 0}`,
	} {
		res, _ := agent.Run(context.Background(), workertest.Start{Handler: "resize", Payload: []byte(payload)})
		if res.Err != nil {
			fmt.Println(res.Outcome, res.Err.Kind, res.Err.Message)
			continue
		}
		fmt.Println(res.Outcome, res.ContentType, string(res.Output))
	}
	// Output:
	// SUCCEEDED application/json {"thumbnail":"cat.png@128w"}
	// FAILED InvalidInput width must be positive
}

// A payload that does not decode into the handler's input type fails the execution for good,
// with kind "InvalidPayload", before the handler is called.
func ExampleHandleTyped_invalidPayload() {
	w := worker.New(worker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	worker.HandleTyped(w, "resize", func(ctx context.Context, in resizeInput) (resizeOutput, error) {
		panic("not reached")
	})

	agent := workertest.Serve(w, workertest.Options{})
	defer agent.Close()
	res, _ := agent.Run(context.Background(), workertest.Start{Handler: "resize", Payload: []byte(`{"width": "wide"}`)})
	fmt.Println(res.Outcome, res.Err.Kind, res.Err.Retryable)
	fmt.Println(res.Err.Message)
	// Output:
	// FAILED InvalidPayload false
	// decode the JSON payload into worker_test.resizeInput: json: cannot unmarshal string into Go struct field resizeInput.width of type int
}

// Protobuf messages work as input and output types: a JSON payload is read with protojson and
// answered in JSON, a binary one ("application/x-protobuf") is answered in binary.
func ExampleHandleTyped_protobuf() {
	w := worker.New(worker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	worker.HandleTyped(w, "shout", func(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		return wrapperspb.String(strings.ToUpper(in.GetValue())), nil
	})

	agent := workertest.Serve(w, workertest.Options{})
	defer agent.Close()
	res, _ := agent.Run(context.Background(), workertest.Start{Handler: "shout", Payload: []byte(`"hello"`)})
	fmt.Println(res.ContentType, string(res.Output))

	payload, _ := proto.Marshal(wrapperspb.String("binary"))
	res, _ = agent.Run(context.Background(), workertest.Start{Handler: "shout", Payload: payload, ContentType: "application/x-protobuf"})
	out := &wrapperspb.StringValue{}
	_ = proto.Unmarshal(res.Output, out)
	fmt.Println(res.ContentType, out.GetValue())
	// Output:
	// application/json "HELLO"
	// application/x-protobuf BINARY
}
