// Package schemas holds Flywheel's contracts: topic names, the message envelopes on them, the
// JSON Schemas of the event streams, feature view definitions and ClickHouse migrations.
// Every service takes them from here, so a name is spelled in one place.
package schemas

import "strings"

// Topic prefixes and fixed topics of ARCHITECTURE.md.
const (
	RawPrefix    = "raw."
	EventsPrefix = "events."
	DLQPrefix    = "dlq."

	TopicPredictions = "predictions"
	TopicDrift       = "drift"
	TopicRegistry    = "registry"
)

// RawTopic is where users produce the stream's unvalidated events.
func RawTopic(stream string) string { return RawPrefix + stream }

// EventsTopic carries the stream's validated envelopes.
func EventsTopic(stream string) string { return EventsPrefix + stream }

// DLQTopic carries the stream's rejected records with their reasons.
func DLQTopic(stream string) string { return DLQPrefix + stream }

// StreamOf returns the stream a raw., events. or dlq. topic belongs to, and false for any
// other topic.
func StreamOf(topic string) (string, bool) {
	for _, p := range []string{RawPrefix, EventsPrefix, DLQPrefix} {
		if s, ok := strings.CutPrefix(topic, p); ok && s != "" {
			return s, true
		}
	}
	return "", false
}
