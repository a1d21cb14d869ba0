package schemas

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// Event is the validated envelope on events.<stream>, keyed by Entity.
type Event struct {
	Stream        string          `json:"stream"`
	EventID       string          `json:"event_id"`
	EventTime     time.Time       `json:"event_time"`
	Entity        string          `json:"entity"`
	SchemaVersion int             `json:"schema_version"`
	IngestedAt    time.Time       `json:"ingested_at"`
	Data          json.RawMessage `json:"data"`
}

// DLQRecord is a rejected record on dlq.<stream>. Payload keeps the original bytes exactly,
// as a JSON string: the text itself when it is valid UTF-8 (PayloadEncoding "utf8"), otherwise
// its base64 (PayloadEncoding "base64"). Raw JSON would not do: encoders re-format it.
type DLQRecord struct {
	Stream          string     `json:"stream"`
	Reasons         []string   `json:"reasons"`
	ReceivedAt      time.Time  `json:"received_at"`
	Payload         string     `json:"payload"`
	PayloadEncoding string     `json:"payload_encoding"`
	Source          *DLQSource `json:"source,omitempty"`
	// Truncated is set when the record would not fit in a Kafka message: Payload then holds
	// only a prefix of the original bytes, whose full size and sha256 follow.
	Truncated      bool   `json:"truncated,omitempty"`
	OriginalSize   int    `json:"original_size,omitempty"`
	OriginalSHA256 string `json:"original_sha256,omitempty"`
}

// DLQSource says where a dead-lettered record came from.
type DLQSource struct {
	Transport string `json:"transport"` // "kafka" or "http"
	Topic     string `json:"topic,omitempty"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	Index     *int   `json:"index,omitempty"` // position inside an array or NDJSON body
	Attempts  int    `json:"attempts,omitempty"`
}

// NewDLQRecord wraps original bytes, choosing the payload encoding that keeps them exact.
func NewDLQRecord(stream string, reasons []string, receivedAt time.Time, original []byte) DLQRecord {
	rec := DLQRecord{Stream: stream, Reasons: reasons, ReceivedAt: receivedAt.UTC()}
	if utf8.Valid(original) {
		rec.Payload, rec.PayloadEncoding = string(original), "utf8"
		return rec
	}
	rec.Payload, rec.PayloadEncoding = base64.StdEncoding.EncodeToString(original), "base64"
	return rec
}

// OriginalBytes returns the payload exactly as it was received.
func (r DLQRecord) OriginalBytes() ([]byte, error) {
	if r.PayloadEncoding == "base64" {
		return base64.StdEncoding.DecodeString(r.Payload)
	}
	return []byte(r.Payload), nil
}

// Prediction is one served prediction on the predictions topic.
type Prediction struct {
	RequestID string `json:"request_id"`
	Model     string `json:"model"`
	Version   int    `json:"version"`
	Alias     string `json:"alias,omitempty"` // champion or challenger, as routed
	Entity    string `json:"entity"`
	// Features are the model's inputs as used (categories as the caller or the store gave
	// them), and Sources where each came from: fetched, defaulted, supplied, request, missing.
	Features map[string]any    `json:"features"`
	Sources  map[string]string `json:"sources,omitempty"`
	// Request holds the instance's fields as sent (entity keys, request-time fields, and any
	// other, such as the event id a label will name).
	Request   map[string]any     `json:"request,omitempty"`
	Output    json.RawMessage    `json:"output"`
	Score     float64            `json:"score"`
	Scores    map[string]float64 `json:"scores,omitempty"`
	Shadow    bool               `json:"shadow,omitempty"` // scored in the shadow; the caller never saw it
	TS        time.Time          `json:"ts"`
	LatencyUS int64              `json:"latency_us"`
}

// DriftKind is what drifted.
type DriftKind string

// Drift kinds.
const (
	DriftData       DriftKind = "data"
	DriftPrediction DriftKind = "prediction"
	DriftConcept    DriftKind = "concept"
)

// DriftEvent is a detected drift on the drift topic, keyed by model name.
type DriftEvent struct {
	ID         string      `json:"id"`
	Model      string      `json:"model"`
	Version    int         `json:"version"`
	Kind       DriftKind   `json:"kind"`
	Feature    string      `json:"feature,omitempty"`
	Method     string      `json:"method"`
	Score      float64     `json:"score"`
	Threshold  float64     `json:"threshold"`
	Window     DriftWindow `json:"window"`
	DetectedAt time.Time   `json:"detected_at"`
	// Features lists every feature that drifted in the window (Feature, Method, Score and
	// Threshold above repeat the one furthest past its threshold).
	Features []DriftedFeature `json:"features,omitempty"`
}

// DriftedFeature is one feature's drift in a window.
type DriftedFeature struct {
	Feature   string  `json:"feature"`
	Method    string  `json:"method"`
	Score     float64 `json:"score"`
	Threshold float64 `json:"threshold"`
	PValue    float64 `json:"p_value,omitempty"`
}

// DriftWindow is the stretch of traffic a drift score was computed on.
type DriftWindow struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	N     int64     `json:"n"`
}

// RegistryEventType names a registry change.
type RegistryEventType string

// Registry change types.
const (
	RegistryVersionCreated RegistryEventType = "version_created"
	RegistryAliasMoved     RegistryEventType = "alias_moved"
	RegistryAliasDeleted   RegistryEventType = "alias_deleted"
	RegistryModelCreated   RegistryEventType = "model_created"
	RegistryModelDeleted   RegistryEventType = "model_deleted"
	RegistryVersionUpdated RegistryEventType = "version_updated"
	RegistryVersionDeleted RegistryEventType = "version_deleted"
	RegistryModelRenamed   RegistryEventType = "model_renamed"

	RegistryExperimentCreated RegistryEventType = "experiment_created"
	RegistryExperimentUpdated RegistryEventType = "experiment_updated"
	RegistryRunCreated        RegistryEventType = "run_created"
	RegistryRunUpdated        RegistryEventType = "run_updated"
	RegistryRunDeleted        RegistryEventType = "run_deleted"
	RegistryRunRestored       RegistryEventType = "run_restored"
)

// RegistryEvent is a change on the registry topic, keyed by model name (or experiment id
// for experiment and run changes).
type RegistryEvent struct {
	ID              string            `json:"id"`
	Type            RegistryEventType `json:"type"`
	Model           string            `json:"model,omitempty"`
	ExperimentID    string            `json:"experiment_id,omitempty"`
	RunID           string            `json:"run_id,omitempty"`
	Status          string            `json:"status,omitempty"`
	Version         int               `json:"version,omitempty"`
	Alias           string            `json:"alias,omitempty"`
	PreviousVersion int               `json:"previous_version,omitempty"`
	Actor           string            `json:"actor,omitempty"`
	Reason          string            `json:"reason,omitempty"`
	At              time.Time         `json:"at"`
}

// Encode returns the record as JSON without HTML escaping, so reasons such as "must be >= 0"
// read as written when an operator tails the DLQ with kcat.
func (r DLQRecord) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
