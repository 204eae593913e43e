package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// outputFormat is the value of -o/--output.
type outputFormat string

const (
	outputTable outputFormat = "table"
	outputJSON  outputFormat = "json"
)

func (f *outputFormat) String() string { return string(*f) }

func (f *outputFormat) Set(s string) error {
	switch v := outputFormat(strings.ToLower(s)); v {
	case outputTable, outputJSON:
		*f = v
		return nil
	}
	return errors.New("want table or json")
}

func (f *outputFormat) Type() string { return "format" }

// printer writes command output in the chosen format.
type printer struct {
	w      io.Writer
	format outputFormat
	// now is the clock for the elapsed time of running executions.
	now func() time.Time
}

// jsonOptions render response messages as the REST API does: lowerCamelCase field names,
// enum names, and fields at their default values included so scripts always find them.
var jsonOptions = protojson.MarshalOptions{EmitDefaultValues: true}

// isJSON reports whether output is JSON.
func (p *printer) isJSON() bool { return p.format == outputJSON }

// json writes m as indented protojson followed by a newline.
func (p *printer) json(m proto.Message) error {
	b, err := marshalJSON(m)
	if err != nil {
		return err
	}
	_, err = p.w.Write(b)
	return err
}

// marshalJSON renders m as protojson indented by two spaces, ending in a newline. protojson
// varies its whitespace from build to build on purpose; re-indenting makes it stable.
func marshalJSON(m proto.Message) ([]byte, error) {
	raw, err := jsonOptions.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s as JSON: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("indent JSON: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// compactJSON renders m as protojson on one line with stable spacing.
func compactJSON(m proto.Message) string {
	raw, err := protojson.Marshal(m)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}

// table writes rows under a header, in columns aligned with spaces.
func (p *printer) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(p.w, 0, 0, 3, ' ', 0)
	writeRow := func(cells []string) {
		for i, c := range cells {
			if i > 0 {
				io.WriteString(tw, "\t")
			}
			io.WriteString(tw, clean(c))
		}
		io.WriteString(tw, "\n")
	}
	writeRow(header)
	for _, r := range rows {
		writeRow(r)
	}
	return tw.Flush()
}

// field is one "key: value" line of a block.
type field struct {
	key   string
	value string
}

// fields writes a block of "Key: value" lines with the values aligned. A value with several
// lines continues on the next lines under its first.
func (p *printer) fields(fs []field) error {
	width := 0
	for _, f := range fs {
		width = max(width, utf8.RuneCountInString(f.key)+1)
	}
	var b strings.Builder
	for _, f := range fs {
		key := f.key + ":"
		b.WriteString(key)
		lines := strings.Split(strings.TrimRight(f.value, "\n"), "\n")
		for i, line := range lines {
			pad := width - utf8.RuneCountInString(key) + 2
			if i > 0 {
				b.WriteByte('\n')
				pad = width + 2
			}
			if line = clean(line); line != "" {
				b.WriteString(strings.Repeat(" ", pad))
				b.WriteString(line)
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(p.w, b.String())
	return err
}

// line writes one line of text.
func (p *printer) line(format string, args ...any) error {
	_, err := fmt.Fprintln(p.w, clean(fmt.Sprintf(format, args...)))
	return err
}

// clean makes text from the server safe to print in one cell: it turns tabs and line
// breaks into spaces, drops other control characters (which could move a terminal's
// cursor or change its colours) and replaces invalid UTF-8.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
}

// truncate shortens s to at most n characters, ending with "…" when it cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
