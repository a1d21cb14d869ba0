package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/ingest"
	"github.com/flywheel-ml/flywheel/services/ingest/catalog"
	"github.com/flywheel-ml/flywheel/services/ingest/httpapi"
)

func streamsCommand(lookup config.LookupFunc) *cobra.Command {
	opts := &clientOptions{}
	root := &cobra.Command{
		Use:   "streams",
		Short: "List the event streams and their schema versions; produce NDJSON events into one",
		Long: `Lists the streams ingest accepts (name, schema version, event id, entity and event time
fields, topics) and produces events into a stream from a file or stdin.
Ingest is --ingest-url, else $` + ingestService.urlEnv() + `, else ` + ingestService.defaultURL() + `;
the bearer token is --token, else $` + tokenEnv + `.`,
		Example: `  flywheel streams list
  flywheel streams produce transactions -f payments.ndjson`,
	}
	opts.addFlags(root, ingestService)
	root.AddCommand(streamsListCommand(opts, lookup), streamsProduceCommand(opts, lookup))
	return root
}

func streamsListCommand(opts *clientOptions, lookup config.LookupFunc) *cobra.Command {
	var local bool
	var dir string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "The streams ingest accepts, with their schema versions and topics",
		Long: `Asks ingest (GET /v1/streams) for the streams it validates, as deployed. With --local (or
--dir) the catalog is read from the shipped schemas (or the directory) instead, without a
service: what the next deployment would accept.`,
		Example: `  flywheel streams list
  flywheel streams list --local -o json
  flywheel streams list --dir schemas/streams`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var streams []httpapi.StreamInfo
			if local || dir != "" {
				cat, err := ingest.LoadCatalog(dir)
				if err != nil {
					return err
				}
				for _, s := range cat.Streams() {
					streams = append(streams, streamInfo(s))
				}
			} else {
				c, err := opts.client(ingestService, lookup)
				if err != nil {
					return err
				}
				var got struct {
					Streams []httpapi.StreamInfo `json:"streams"`
				}
				if err := c.get(cmd.Context(), "/v1/streams", nil, &got); err != nil {
					return err
				}
				streams = got.Streams
			}
			if streams == nil {
				streams = []httpapi.StreamInfo{}
			}
			return emit(cmd.OutOrStdout(), opts.output, map[string]any{"streams": streams}, func(w io.Writer) error {
				t := newTable(w, "STREAM", "VERSION", "EVENT ID", "ENTITY", "EVENT TIME", "FINGERPRINT", "TOPICS")
				for _, s := range streams {
					id := strings.Join(s.EventID.Fields, "+") + s.EventID.Suffix
					if s.EventID.Derive {
						id += " (or derived)"
					}
					t.row(s.Name, strconv.Itoa(s.SchemaVersion), id, s.Entity, s.EventTime, truncate(s.Fingerprint, 13),
						strings.Join([]string{s.Topics["raw"], s.Topics["events"], s.Topics["dlq"]}, " "))
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().BoolVar(&local, "local", false, "read the shipped catalog instead of asking ingest")
	cmd.Flags().StringVar(&dir, "dir", "", "read the catalog in this directory of <stream>.json schemas instead of asking ingest")
	return cmd
}

// streamInfo describes a catalog stream as ingest's listing does.
func streamInfo(s *catalog.Stream) httpapi.StreamInfo {
	return httpapi.StreamInfo{Name: s.Name, SchemaVersion: s.Meta.Version, Fingerprint: s.Fingerprint, EventID: s.Meta.EventID,
		Entity: s.Meta.Entity, EventTime: s.Meta.EventTime,
		Topics: map[string]string{"raw": schemas.RawTopic(s.Name), "events": schemas.EventsTopic(s.Name), "dlq": schemas.DLQTopic(s.Name)}}
}

// produceSummary is what `streams produce` did.
type produceSummary struct {
	Stream     string      `json:"stream"`
	Via        string      `json:"via"`   // http or kafka
	Topic      string      `json:"topic"` // kafka: the topic written
	Sent       int         `json:"sent"`
	Accepted   int         `json:"accepted"`   // http: valid events, duplicates included
	Duplicates int         `json:"duplicates"` // http
	Rejected   int         `json:"rejected"`   // http
	Rejections []rejection `json:"rejections"` // http: the first 100
	Elapsed    float64     `json:"elapsed_seconds"`
}

type rejection struct {
	Line    int      `json:"line"`
	Code    string   `json:"code,omitempty"`
	Reasons []string `json:"reasons"`
}

// maxRejectionsKept bounds the rejections a summary lists.
const maxRejectionsKept = 100

func streamsProduceCommand(opts *clientOptions, lookup config.LookupFunc) *cobra.Command {
	var file, via, dir string
	var batch int
	cmd := &cobra.Command{
		Use:   "produce STREAM [-f FILE]",
		Short: "Send NDJSON events (a file or stdin) into a stream, and count what was accepted",
		Long: `Reads one event per line (NDJSON) from -f FILE or stdin and sends them to STREAM.

--via http (the default) posts them to ingest (POST /v1/streams/STREAM/events) in batches of
--batch: each answer says which events were accepted, which were duplicates (an event id seen
before) and which were rejected with why — the summary lists rejected events by line number.
Rejected events also go to dlq.STREAM. Exits 1 when any event was rejected.

--via kafka writes each line as one record to raw.STREAM (keyed by the event's entity field
when the stream is in the catalog), as any producer would; ingest validates them
asynchronously, so the summary can only count what the broker acknowledged: look for rejects
on dlq.STREAM. The brokers are $FLYWHEEL_KAFKA_BROKERS (default 127.0.0.1:9092).`,
		Example: `  flywheel streams produce transactions -f payments.ndjson
  cat payments.ndjson | flywheel streams produce transactions -o json
  flywheel streams produce transactions -f payments.ndjson --via kafka`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			stream := args[0]
			if batch < 1 || batch > 10000 {
				return fmt.Errorf("--batch must be between 1 and 10000 (ingest's limit per request), got %d", batch)
			}
			if file == "" {
				file = "-"
			}
			var sum *produceSummary
			var err error
			began := time.Now()
			switch via {
			case "http":
				var c *apiClient
				if c, err = opts.client(ingestService, lookup); err != nil {
					return err
				}
				sum, err = produceHTTP(cmd.Context(), c, stream, file, cmd.InOrStdin(), batch)
			case "kafka":
				sum, err = produceKafka(cmd.Context(), lookup, stream, dir, file, cmd.InOrStdin(), batch)
			default:
				return fmt.Errorf("--via %q: want http or kafka", via)
			}
			if err != nil {
				return err
			}
			if sum.Sent == 0 {
				return fmt.Errorf("no events in %s: give NDJSON, one event per line", inputName(file))
			}
			sum.Elapsed = time.Since(began).Seconds()
			if err := emit(cmd.OutOrStdout(), opts.output, sum, func(w io.Writer) error { return printProduced(w, sum) }); err != nil {
				return err
			}
			if sum.Rejected > 0 {
				return fmt.Errorf("%d of %d events were rejected (listed above; also on %s)", sum.Rejected, sum.Sent, schemas.DLQTopic(stream))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "-", "NDJSON file of events (- for stdin)")
	cmd.Flags().StringVar(&via, "via", "http", "http (ingest's API, with per-event answers) or kafka (raw.STREAM)")
	cmd.Flags().IntVar(&batch, "batch", 1000, "events per request (http) or per produce call (kafka)")
	cmd.Flags().StringVar(&dir, "streams-dir", "", "kafka: catalog to find the entity field in (default: the shipped one)")
	return cmd
}

// ingestAnswer is ingest's answer to a batch of events.
type ingestAnswer struct {
	Accepted   int               `json:"accepted"`
	Duplicates int               `json:"duplicates"`
	Rejected   int               `json:"rejected"`
	Errors     []ingestRejection `json:"errors"`
}

type ingestRejection struct {
	Index   int      `json:"index"` // in the batch
	Code    string   `json:"code"`
	Reasons []string `json:"reasons"`
}

// maxProduceBody keeps a request well under ingest's 8 MiB default body limit.
const maxProduceBody = 4 << 20

// produceHTTP posts the lines of file to ingest in batches of NDJSON and adds up the answers.
func produceHTTP(ctx context.Context, c *apiClient, stream, file string, stdin io.Reader, batch int) (*produceSummary, error) {
	sum := &produceSummary{Stream: stream, Via: "http", Rejections: []rejection{}}
	path := escapePath("v1", "streams", stream, "events")
	var body bytes.Buffer
	_, err := scanBatches(file, stdin, batch, maxProduceBody, func(lines []inputLine) error {
		body.Reset()
		for _, l := range lines {
			body.Write(l.data)
			body.WriteByte('\n')
		}
		var res ingestAnswer
		err := c.doRaw(ctx, "POST", path, nil, "application/x-ndjson", body.Bytes(), &res)
		var tooLarge *APIError
		if len(lines) == 1 && errors.As(err, &tooLarge) && tooLarge.Code == "event_too_large" {
			// One event alone in its request is refused with 413 rather than listed: the same
			// rejection (it is dead-lettered too).
			err, res.Rejected = nil, 1
			res.Errors = []ingestRejection{{Index: 0, Code: tooLarge.Code, Reasons: []string{"/: " + tooLarge.Message}}}
		}
		if err != nil {
			if sum.Sent > 0 {
				return fmt.Errorf("%w (after %d events were sent and answered: %d accepted, %d rejected)", err, sum.Sent, sum.Accepted, sum.Rejected)
			}
			return err
		}
		sum.Sent += len(lines)
		sum.Accepted += res.Accepted
		sum.Duplicates += res.Duplicates
		sum.Rejected += res.Rejected
		for _, e := range res.Errors {
			if len(sum.Rejections) == maxRejectionsKept {
				break
			}
			line := 0
			if e.Index >= 0 && e.Index < len(lines) {
				line = lines[e.Index].n
			}
			sum.Rejections = append(sum.Rejections, rejection{Line: line, Code: e.Code, Reasons: e.Reasons})
		}
		return nil
	})
	return sum, err
}

// produceKafka writes each line of file as a record of raw.<stream>.
func produceKafka(ctx context.Context, lookup config.LookupFunc, stream, dir, file string, stdin io.Reader, batch int) (*produceSummary, error) {
	var cfg struct{ Kafka kafkax.Config }
	if err := config.Load(&cfg, nil, lookup, io.Discard); err != nil {
		return nil, err
	}
	entity := ""
	if cat, err := ingest.LoadCatalog(dir); err == nil {
		if s, ok := cat.Get(stream); ok {
			entity = s.Meta.Entity
		}
	}
	topic := schemas.RawTopic(stream)
	p := kafkax.NewProducer(cfg.Kafka)
	defer p.Close()
	sum := &produceSummary{Stream: stream, Via: "kafka", Topic: topic, Rejections: []rejection{}}
	_, err := scanBatches(file, stdin, batch, 0, func(lines []inputLine) error {
		msgs := make([]kafkax.Message, len(lines))
		for i, l := range lines {
			msgs[i] = kafkax.Message{Topic: topic, Key: entityKey(l.data, entity), Value: l.data}
		}
		if err := p.Produce(ctx, msgs...); err != nil {
			return fmt.Errorf("kafka at %s: %w (is the stack up? `make up` or deploy/local/stack up starts it; does %s exist? ingest creates it at start-up; %d events were acknowledged before)",
				strings.Join(cfg.Kafka.Brokers, ","), err, topic, sum.Sent)
		}
		sum.Sent += len(msgs)
		return nil
	})
	return sum, err
}

// entityKey is the event's entity field (a string or number at the top level), or nil.
func entityKey(line []byte, field string) []byte {
	if field == "" {
		return nil
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(line, &doc) != nil {
		return nil
	}
	raw, ok := doc[field]
	if !ok {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []byte(s)
	}
	if _, err := strconv.ParseFloat(string(raw), 64); err == nil {
		return raw
	}
	return nil
}

func printProduced(w io.Writer, sum *produceSummary) error {
	if sum.Via == "kafka" {
		_, err := fmt.Fprintf(w, "%d events written to %s in %.1fs; ingest validates them from there (rejects go to %s)\n",
			sum.Sent, sum.Topic, sum.Elapsed, schemas.DLQTopic(sum.Stream))
		return err
	}
	fmt.Fprintf(w, "%d events sent to %s in %.1fs: %d accepted (%d of them duplicates), %d rejected\n",
		sum.Sent, sum.Stream, sum.Elapsed, sum.Accepted, sum.Duplicates, sum.Rejected)
	if len(sum.Rejections) == 0 {
		return nil
	}
	t := newTable(w, "LINE", "REASONS")
	for _, r := range sum.Rejections {
		t.row(strconv.Itoa(r.Line), strings.Join(r.Reasons, "; "))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if sum.Rejected > len(sum.Rejections) {
		_, err := fmt.Fprintf(w, "(%d more rejected events not listed)\n", sum.Rejected-len(sum.Rejections))
		return err
	}
	return nil
}
