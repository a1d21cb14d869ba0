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
