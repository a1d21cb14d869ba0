package artifacts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// spool holds an artifact while it is verified: in memory up to limit bytes, then in a
// temporary file in dir.
type spool struct {
	limit int64
	dir   string
	buf   []byte
	file  *os.File
}

func newSpool(limit int64, dir string, size uint64) *spool {
	s := &spool{limit: limit, dir: dir}
	if size <= uint64(limit) {
		s.buf = make([]byte, 0, size)
	}
	return s
}

func (s *spool) Write(p []byte) (int, error) {
	if s.file == nil && int64(len(s.buf)+len(p)) <= s.limit {
		s.buf = append(s.buf, p...)
		return len(p), nil
	}
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "flywheel-artifact-*")
		if err != nil {
			return 0, fmt.Errorf("create spool file: %w", err)
		}
		s.file = f
		if _, err := f.Write(s.buf); err != nil {
			return 0, fmt.Errorf("write spool file: %w", err)
		}
		s.buf = nil
	}
	n, err := s.file.Write(p)
	if err != nil {
		return n, fmt.Errorf("write spool file: %w", err)
	}
	return n, nil
}

// reader hands the spooled content over; closing it releases the spool.
func (s *spool) reader() (io.ReadCloser, error) {
	if s.file == nil {
		return io.NopCloser(bytes.NewReader(s.buf)), nil
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		s.discard()
		return nil, fmt.Errorf("rewind spool file: %w", err)
	}
	return &spoolFile{f: s.file}, nil
}

// discard drops the spooled content.
func (s *spool) discard() {
	if s.file != nil {
		_ = (&spoolFile{f: s.file}).Close()
		s.file = nil
	}
	s.buf = nil
}

// spoolFile reads a spool file and removes it on Close.
type spoolFile struct {
	f      *os.File
	closed bool
}

func (r *spoolFile) Read(p []byte) (int, error) { return r.f.Read(p) }

// WriteTo lets io.Copy hand the *os.File itself to destinations that can use it (a bare
// http.ResponseWriter sends it with sendfile).
func (r *spoolFile) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, r.f) }

func (r *spoolFile) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	return errors.Join(r.f.Close(), os.Remove(r.f.Name()))
}
