package httpx

import (
	"io"
	"net/http"
	"time"
)

// MaxDrainBytes bounds how much of an unread request body the server reads and discards
// after answering. Go's server discards at most 256 KiB and then closes the connection with
// data unread, which resets it: a client that sends its whole body before reading (most do)
// then never sees the answer — a 413 becomes "connection reset". Draining lets it finish
// sending and read the JSON error; beyond this bound (or 4 × MaxBodyBytes, whichever is
// smaller) the connection is closed instead (a 10 GB upload is not worth reading).
const MaxDrainBytes = 64 << 20

// drainTimeout bounds how long a drain waits for a slow client.
const drainTimeout = 30 * time.Second

// trackedBody notes whether the handler read the body, and whether to its end. It keeps the
// original body: a handler's http.MaxBytesReader stops at the limit, the drain reads past it.
type trackedBody struct {
	io.ReadCloser
	read bool
	eof  bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	b.read = true
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// unread reports whether the request may have body bytes no one has read.
func (b *trackedBody) unread() bool {
	return b != nil && !b.eof && b.ReadCloser != nil && b.ReadCloser != http.NoBody
}

// drainBound is how much of an unread body drain reads: 4 × the body limit, at most
// MaxDrainBytes.
func (s *Server) drainBound() int64 {
	return min(int64(MaxDrainBytes), 4*s.cfg.MaxBodyBytes)
}

// drain sends the answer, then discards what the handler left of the body, up to drainBound,
// so a client that sends its whole body before reading gets to read the answer. Past the
// bound the connection is closed (an error answer already says Connection: close; Go's
// server closes it for anything else left unread).
func (s *Server) drain(w http.ResponseWriter, r *http.Request, body *trackedBody) {
	if !body.unread() || r.ContentLength == 0 {
		return
	}
	if !body.read && r.Header.Get("Expect") == "100-continue" {
		// The client waits for "100 Continue" before sending; it got the final answer
		// instead and will not send the body. Nothing to drain.
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.Flush() // the answer first: a client reading while it sends can stop early
	_ = rc.SetReadDeadline(time.Now().Add(drainTimeout))
	_, _ = io.CopyN(io.Discard, body.ReadCloser, s.drainBound())
}
