// Package artifacts stores the artifacts of MLflow runs in a NATS JetStream object store and
// serves them through MLflow's artifact proxy API (httpapi.go).
//
// Integrity: Put computes the SHA-256 of what it stores and keeps it in the object's metadata
// (key "sha256", hex) beside NATS's own digest; Open reads the whole object, checks its size,
// chunk count and SHA-256 against both, and only then hands out bytes. A corrupted chunk
// therefore surfaces as ErrCorrupt before an HTTP handler has sent a status line, never as
// a 200 with bad bytes that fails at the end.
package artifacts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Errors callers branch on with errors.Is.
var (
	ErrNotFound    = errors.New("not found")
	ErrInvalidPath = errors.New("invalid artifact path")
	ErrTooLarge    = errors.New("too large")
	ErrCorrupt     = errors.New("corrupt")
	// ErrReplaced is Open giving up on an artifact that kept being replaced while it was
	// read; trying again later reads it.
	ErrReplaced = errors.New("replaced while being read")
)

// Limits bound what the store accepts and how much memory a read may hold. Zero fields take
// the defaults below.
type Limits struct {
	// MaxObjectBytes is the largest artifact Put accepts; it is enforced while streaming.
	MaxObjectBytes int64
	// ChunkBytes is the size of the chunk messages an artifact is split into. It must stay
	// below the NATS server's max_payload (1 MiB unless configured otherwise).
	ChunkBytes int
	// SpoolMemoryBytes is how much of an artifact Open verifies in memory; larger
	// artifacts are spooled to a temporary file, removed when the reader is closed.
	SpoolMemoryBytes int64
	// SpoolDir is where those temporary files go; "" is os.TempDir().
	SpoolDir string
}

// Defaults of Limits.
const (
	DefaultMaxObjectBytes   = 1 << 30 // 1 GiB
	DefaultChunkBytes       = 128 << 10
	DefaultSpoolMemoryBytes = 8 << 20
	maxChunkBytes           = 8 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxObjectBytes == 0 {
		l.MaxObjectBytes = DefaultMaxObjectBytes
	}
	if l.ChunkBytes == 0 {
		l.ChunkBytes = DefaultChunkBytes
	}
	if l.SpoolMemoryBytes == 0 {
		l.SpoolMemoryBytes = DefaultSpoolMemoryBytes
	}
	if l.SpoolDir == "" {
		l.SpoolDir = os.TempDir()
	}
	return l
}

// Validate checks the limits after defaults are applied.
func (l Limits) Validate() error {
	l = l.withDefaults()
	switch {
	case l.MaxObjectBytes < 0:
		return fmt.Errorf("artifact limits: MaxObjectBytes must be positive, got %d", l.MaxObjectBytes)
	case l.ChunkBytes < 0 || l.ChunkBytes > maxChunkBytes:
		return fmt.Errorf("artifact limits: ChunkBytes must be between 1 and %d, got %d", maxChunkBytes, l.ChunkBytes)
	case l.SpoolMemoryBytes < 0:
		return fmt.Errorf("artifact limits: SpoolMemoryBytes must be positive, got %d", l.SpoolMemoryBytes)
	}
	return nil
}

// FileInfo is one entry of an artifact listing, in MLflow's shape. Path is relative to the
// listed directory (MLflow's artifact proxy lists base names) and FileSize is omitted for
// directories.
type FileInfo struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize int64  `json:"file_size,omitempty"`
}

// metaSHA256 is the object metadata key holding the hex SHA-256 Put computed.
const metaSHA256 = "sha256"

// Store keeps artifacts in one object store bucket. It is safe for concurrent use.
//
// Consistency: Put replaces an object atomically (readers see the old or the new content,
// never a mix) and a failed Put leaves no trace. List and recursive Delete read the bucket's
// whole index, so their cost grows with the number of objects in the bucket.
type Store struct {
	obs    jetstream.ObjectStore
	stream jetstream.Stream
	bucket string
	limits Limits
}

// Open creates the object store bucket, or binds to it when it exists (its configuration —
// replicas, storage, limits — is then left as the operator set it).
func Open(ctx context.Context, js jetstream.JetStream, bucket string, limits Limits) (*Store, error) {
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	limits = limits.withDefaults()
	if nc := js.Conn(); nc != nil {
		if maxPayload := nc.MaxPayload(); maxPayload > 0 && int64(limits.ChunkBytes) > maxPayload-1024 {
			return nil, fmt.Errorf("artifact limits: ChunkBytes %d does not fit the NATS server's max_payload of %d bytes",
				limits.ChunkBytes, maxPayload)
		}
	}
	obs, err := js.ObjectStore(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: bucket,
			Description: "MLflow run artifacts", Storage: jetstream.FileStorage})
		if errors.Is(err, jetstream.ErrBucketExists) { // created concurrently
			obs, err = js.ObjectStore(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("artifact bucket %s: %w", bucket, err)
	}
	// The chunks are read straight from the stream (see readChunks); the Stream handle knows
	// the bucket allows direct gets.
	stream, err := js.Stream(ctx, "OBJ_"+bucket)
	if err != nil {
		return nil, fmt.Errorf("artifact bucket %s: stream: %w", bucket, err)
	}
	return &Store{obs: obs, stream: stream, bucket: bucket, limits: limits}, nil
}

// Put stores the content of r under path, replacing what was there. It streams chunk by
// chunk through one ChunkBytes buffer; the artifact is never held whole. It fails with ErrTooLarge as soon as r yields more than
// MaxObjectBytes, and with ErrInvalidPath for a path CleanPath rejects. A Put that fails for
// any reason (a read error, ctx, the limit) commits nothing: an existing object under path
// keeps its content and no partial chunks stay behind.
func (s *Store) Put(ctx context.Context, path string, r io.Reader) (FileInfo, error) {
	name, err := CleanPath(path)
	if err != nil {
		return FileInfo{}, err
	}
	meta := jetstream.ObjectMeta{
		Name:     name,
		Metadata: map[string]string{},
		Opts:     &jetstream.ObjectMetaOptions{ChunkSize: uint32(s.limits.ChunkBytes)},
	}
	up := &upload{src: r, max: s.limits.MaxObjectBytes, hash: sha256.New(), meta: meta.Metadata}
	// ObjectStore.Put publishes the chunks under a fresh NUID and only then the meta message
	// that makes them the object; when the reader fails it purges those chunks and returns
	// before publishing meta, so the previous object (if any) is untouched.
	info, err := s.obs.Put(ctx, meta, up)
	if errors.Is(err, ErrTooLarge) {
		return FileInfo{}, fmt.Errorf("artifact %s is %w: the limit is %d bytes", name, ErrTooLarge, s.limits.MaxObjectBytes)
	}
	if err != nil {
		return FileInfo{}, fmt.Errorf("put artifact %s: %w", name, err)
	}
	if !up.eof {
		return FileInfo{}, fmt.Errorf("put artifact %s: the object store stopped reading before the end", name)
	}
	if err := s.ensureSum(ctx, info.NUID, name, up.sum); err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Path: name, FileSize: int64(info.Size)}, nil
}

// ensureSum makes sure the stored meta carries the SHA-256 Put computed. upload.Read records
// it in the meta's Metadata map at EOF, before ObjectStore.Put marshals the meta message (the
// map is shared with the ObjectMeta Put copies), so the sum is normally committed atomically
// with the object. Should a nats.go release copy the map first, this writes it with
// UpdateMeta instead.
func (s *Store) ensureSum(ctx context.Context, nuid, name, sum string) error {
	info, err := s.obs.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil // deleted concurrently
	}
	if err != nil {
		return fmt.Errorf("put artifact %s: read back meta: %w", name, err)
	}
	if info.NUID != nuid || info.Metadata[metaSHA256] == sum {
		return nil // replaced concurrently, or already recorded
	}
	md := make(map[string]string, len(info.Metadata)+1)
	for k, v := range info.Metadata {
		md[k] = v
	}
	md[metaSHA256] = sum
	if err := s.obs.UpdateMeta(ctx, name, jetstream.ObjectMeta{Name: name, Description: info.Description,
		Headers: info.Headers, Metadata: md}); err != nil {
		return fmt.Errorf("put artifact %s: record sha256: %w", name, err)
	}
	return nil
}

// upload is the reader ObjectStore.Put consumes. It fills every buffer it is given (so chunks
// are ChunkBytes long whatever sizes the source reads in), hashes what it hands on, fails
// with ErrTooLarge once more than max bytes arrive, and records the SHA-256 in meta at EOF.
type upload struct {
	src  io.Reader
	max  int64
	n    int64
	hash hash.Hash
	meta map[string]string
	eof  bool
	sum  string
}

func (u *upload) Read(p []byte) (int, error) {
	if u.eof {
		return 0, io.EOF
	}
	// Read at most one byte past the limit: enough to tell "exactly max" from "too large".
	if room := u.max - u.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := io.ReadFull(u.src, p)
	u.n += int64(n)
	if u.n > u.max {
		return 0, ErrTooLarge
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// ObjectStore.Put compares with io.EOF itself, so it must be returned unwrapped.
		err = io.EOF
	default:
		return 0, err
	}
	u.hash.Write(p[:n])
	if err == io.EOF {
		u.eof = true
		u.sum = hex.EncodeToString(u.hash.Sum(nil))
		u.meta[metaSHA256] = u.sum
	}
	return n, err
}

// Open returns the content of the artifact at path once all of it was read and its size,
// chunk count and SHA-256 matched what Put recorded, so a reader never yields a byte of a
// corrupted artifact: that fails here with ErrCorrupt, naming the artifact and both digests.
// Up to SpoolMemoryBytes is held in memory, larger artifacts in a temporary file that Close
// removes. The caller must Close the reader. ErrNotFound when no artifact is at path (a
// directory is not an artifact).
func (s *Store) Open(ctx context.Context, path string) (io.ReadCloser, FileInfo, error) {
	name, err := CleanPath(path)
	if err != nil {
		return nil, FileInfo{}, err
	}
	for attempt := 1; ; attempt++ {
		info, err := s.info(ctx, name)
		if err != nil {
			return nil, FileInfo{}, err
		}
		rc, err := s.read(ctx, info)
		if err == nil {
			return rc, FileInfo{Path: name, FileSize: int64(info.Size)}, nil
		}
		if !errors.Is(err, ErrCorrupt) {
			return nil, FileInfo{}, err
		}
		// A Put replacing the object purges the old chunks right after publishing the new
		// meta, and Delete purges them too; a read racing either finds chunks missing. Only
		// an object that stayed the same (same NUID) while it was read is corrupt.
		now, ierr := s.info(ctx, name)
		if ierr != nil {
			return nil, FileInfo{}, ierr // ErrNotFound when deleted meanwhile
		}
		if now.NUID == info.NUID {
			return nil, FileInfo{}, err
		}
		if attempt == openAttempts {
			return nil, FileInfo{}, fmt.Errorf("artifact %s: %w %d times", name, ErrReplaced, attempt)
		}
	}
}

// openAttempts bounds how often Open starts over because the object was replaced under it.
const openAttempts = 5

func (s *Store) info(ctx context.Context, name string) (*jetstream.ObjectInfo, error) {
	info, err := s.obs.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("artifact %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %w", name, err)
	}
	return info, nil
}

// read verifies the object described by info and returns its spooled content.
func (s *Store) read(ctx context.Context, info *jetstream.ObjectInfo) (io.ReadCloser, error) {
	want, err := expectedSum(info)
	if err != nil {
		return nil, err
	}
	sp := newSpool(s.limits.SpoolMemoryBytes, s.limits.SpoolDir, info.Size)
	got, err := s.readChunks(ctx, info, sp)
	if err == nil {
		err = got.check(info, want)
	}
	if err != nil {
		sp.discard()
		return nil, err
	}
	return sp.reader()
}

// expectedSum is the SHA-256 the object must have: the one Put recorded in its metadata,
// which must agree with NATS's digest; NATS's digest alone for objects written by other
// clients.
func expectedSum(info *jetstream.ObjectInfo) ([]byte, error) {
	natsSum, err := jetstream.DecodeObjectDigest(info.Digest)
	if err != nil || len(natsSum) != sha256.Size {
		return nil, fmt.Errorf("artifact %s is %w: its NATS digest %q is not a SHA-256", info.Name, ErrCorrupt, info.Digest)
	}
	recorded, ok := info.Metadata[metaSHA256]
	if !ok {
		return natsSum, nil
	}
	sum, err := hex.DecodeString(recorded)
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("artifact %s is %w: its recorded sha256 %q is not a SHA-256", info.Name, ErrCorrupt, recorded)
	}
	if !bytes.Equal(sum, natsSum) {
		return nil, fmt.Errorf("artifact %s is %w: its recorded sha256 %s disagrees with the NATS digest %s",
			info.Name, ErrCorrupt, recorded, hex.EncodeToString(natsSum))
	}
	return sum, nil
}

// readResult is what readChunks found.
type readResult struct {
	sum      []byte
	size     uint64
	chunks   uint32
	overflow bool // more bytes than the meta's size; reading stopped there
}

// readChunks copies the object's chunks, in stream order, to w. It reads with direct gets
// of the next message on the object's chunk subject rather than through ObjectStore.Get,
// whose reader reports a digest mismatch only at EOF and waits for a missing chunk until
// its context ends; here a missing chunk simply ends the subject.
func (s *Store) readChunks(ctx context.Context, info *jetstream.ObjectInfo, w io.Writer) (readResult, error) {
	subject := "$O." + s.bucket + ".C." + info.NUID
	h := sha256.New()
	var res readResult
	for seq := uint64(1); res.chunks < info.Chunks; {
		msg, err := s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("artifact %s: read chunk %d: %w", info.Name, res.chunks+1, err)
		}
		if res.size+uint64(len(msg.Data)) > info.Size {
			res.overflow = true
			break
		}
		h.Write(msg.Data)
		if _, err := w.Write(msg.Data); err != nil {
			return res, fmt.Errorf("artifact %s: spool: %w", info.Name, err)
		}
		res.size += uint64(len(msg.Data))
		res.chunks++
		seq = msg.Sequence + 1
	}
	res.sum = h.Sum(nil)
	return res, nil
}

// check compares what was read with what the meta promises.
func (res readResult) check(info *jetstream.ObjectInfo, want []byte) error {
	var detail string
	switch {
	case res.overflow:
		detail = fmt.Sprintf("its chunks hold more than the stored size of %d bytes", info.Size)
	case res.chunks != info.Chunks || res.size != info.Size:
		detail = fmt.Sprintf("read %d of %d chunks, %d of %d bytes", res.chunks, info.Chunks, res.size, info.Size)
	}
	if detail == "" && bytes.Equal(res.sum, want) {
		return nil
	}
	msg := fmt.Sprintf("sha256 mismatch: stored %s, read %s", hex.EncodeToString(want), hex.EncodeToString(res.sum))
	if res.overflow {
		msg = "sha256 mismatch: stored " + hex.EncodeToString(want) + ", " + detail
	} else if detail != "" {
		msg += " (" + detail + ")"
	}
	return fmt.Errorf("artifact %s is %w: %s", info.Name, ErrCorrupt, msg)
}

// List returns the immediate children of dir ("" is the root), sorted by path: artifacts
// with their sizes, and directories synthesized from deeper names. Paths are relative to
// dir. A directory holding nothing, or a dir that is an artifact rather than a directory,
// lists empty.
func (s *Store) List(ctx context.Context, dir string) ([]FileInfo, error) {
	dir, err := cleanDir(dir, true)
	if err != nil {
		return nil, err
	}
	objects, err := s.under(ctx, dir)
	if err != nil {
		return nil, err
	}
	prefix := dir
	if prefix != "" {
		prefix += "/"
	}
	seenDir := map[string]bool{}
	files := []FileInfo{}
	for _, o := range objects {
		rest := o.Name[len(prefix):]
		if child, _, nested := strings.Cut(rest, "/"); nested {
			if !seenDir[child] {
				seenDir[child] = true
				files = append(files, FileInfo{Path: child, IsDir: true})
			}
			continue
		}
		files = append(files, FileInfo{Path: rest, FileSize: int64(o.Size)})
	}
	// An object store can hold both "a/b" and "a/b/c"; both entries are listed, the
	// artifact first.
	sort.Slice(files, func(i, j int) bool {
		if files[i].Path != files[j].Path {
			return files[i].Path < files[j].Path
		}
		return !files[i].IsDir
	})
	return files, nil
}

// under returns the objects whose names start with dir + "/" (every object for "").
func (s *Store) under(ctx context.Context, dir string) ([]*jetstream.ObjectInfo, error) {
	all, err := s.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list artifacts under %q: %w", dir, err)
	}
	if dir == "" {
		return all, nil
	}
	var out []*jetstream.ObjectInfo
	for _, o := range all {
		if strings.HasPrefix(o.Name, dir+"/") {
			out = append(out, o)
		}
	}
	return out, nil
}

// Delete removes the artifact at path and, when path is a directory, every artifact under
// it (MLflow's delete-artifacts semantics). ErrNotFound when there was nothing to delete.
// The root cannot be deleted through this call.
func (s *Store) Delete(ctx context.Context, path string) error {
	name, err := cleanDir(path, false)
	if err != nil {
		return err
	}
	var names []string
	switch _, err := s.obs.GetInfo(ctx, name); {
	case err == nil:
		names = append(names, name)
	case !errors.Is(err, jetstream.ErrObjectNotFound):
		return fmt.Errorf("delete artifact %s: %w", name, err)
	}
	objects, err := s.under(ctx, name)
	if err != nil {
		return err
	}
	for _, o := range objects {
		names = append(names, o.Name)
	}
	if len(names) == 0 {
		return fmt.Errorf("artifact %s: %w", name, ErrNotFound)
	}
	for _, n := range names {
		// Deleted concurrently is as good as deleted here.
		if err := s.obs.Delete(ctx, n); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("delete artifact %s: %w", n, err)
		}
	}
	return nil
}
