package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// maxInputLine is the longest NDJSON line the CLI reads.
const maxInputLine = 16 << 20

// scanLines hands each non-blank line of file (- for stdin) to visit with its 1-based line
// number. The line is reused afterwards: copy it to keep it.
func scanLines(file string, stdin io.Reader, visit func(n int, line []byte) error) error {
	r := stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), maxInputLine)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := visit(n, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", inputName(file), err)
	}
	return nil
}

func inputName(file string) string {
	if file == "-" {
		return "stdin"
	}
	return file
}

// readNDJSON reads every line of file (- for stdin) as a JSON value.
func readNDJSON(file string, stdin io.Reader) ([]json.RawMessage, error) {
	var out []json.RawMessage
	err := scanLines(file, stdin, func(n int, line []byte) error {
		if !json.Valid(line) {
			return fmt.Errorf("%s line %d is not JSON", file, n)
		}
		out = append(out, json.RawMessage(bytes.Clone(line)))
		return nil
	})
	return out, err
}

// jsonInputs is the JSON values given with a repeatable flag (named flag, for errors), then
// the lines of file when one is named (- for stdin).
func jsonInputs(flag string, values []string, file string, stdin io.Reader) ([]json.RawMessage, error) {
	var out []json.RawMessage
	for i, v := range values {
		if !json.Valid([]byte(v)) {
			return nil, fmt.Errorf("%s number %d is not JSON: %s", flag, i+1, v)
		}
		out = append(out, json.RawMessage(v))
	}
	if file == "" {
		return out, nil
	}
	more, err := readNDJSON(file, stdin)
	return append(out, more...), err
}

// inputLine is one line of an input file and its 1-based number.
type inputLine struct {
	n    int
	data []byte
}

// scanBatches hands the lines of file (- for stdin) to flush in batches of at most size
// lines and, when maxBytes > 0, about maxBytes bytes (a longer line goes alone), and returns
// how many lines there were.
func scanBatches(file string, stdin io.Reader, size, maxBytes int, flush func(batch []inputLine) error) (int, error) {
	var batch []inputLine
	total, bytesHeld := 0, 0
	send := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := flush(batch)
		batch, bytesHeld = batch[:0], 0
		return err
	}
	err := scanLines(file, stdin, func(n int, line []byte) error {
		if maxBytes > 0 && len(batch) > 0 && bytesHeld+len(line) > maxBytes {
			if err := send(); err != nil {
				return err
			}
		}
		batch = append(batch, inputLine{n: n, data: bytes.Clone(line)})
		bytesHeld += len(line) + 1
		total++
		if len(batch) == size {
			return send()
		}
		return nil
	})
	if err == nil {
		err = send()
	}
	return total, err
}
