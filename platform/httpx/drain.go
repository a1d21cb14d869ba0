package httpx

import (
	"io"
	"net/http"
)

// MaxDrainBytes bounds how much of an unread request body the server reads and discards
// after answering. Go's server discards at most 256 KiB and then closes the connection with
// data unread, which resets it: a client that sends its whole body before reading (most do)
// then never sees the answer — a 413 becomes "connection reset". Draining lets it finish
// sending and read the JSON error; beyond this bound the connection is closed instead (a
// 10 GB upload is not worth reading).
const MaxDrainBytes = 64 << 20

// trackedBody notes whether the handler read the body to its end.
type trackedBody struct {
	io.ReadCloser
	eof bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// drain discards what the handler left of the body, up to MaxDrainBytes (and four times the
// body limit), so the client can read the answer; past that the connection is closed.
func (s *Server) drain(w http.ResponseWriter, body *trackedBody) {
	if body.eof || body.ReadCloser == http.NoBody {
		return
	}
	bound := min(int64(MaxDrainBytes), 4*s.cfg.MaxBodyBytes)
	n, err := io.CopyN(io.Discard, body.ReadCloser, bound)
	if err == nil && n == bound {
		// More is coming than we are willing to read: let the server close the connection.
		if rw, ok := w.(*statusRecorder); ok && !rw.wrote {
			rw.Header().Set("Connection", "close")
		}
	}
}
