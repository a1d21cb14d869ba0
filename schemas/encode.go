package schemas

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendEventJSON appends e encoded as JSON, the same document json.Marshal produces up to
// key order and spacing, several times faster: Data must be valid JSON and is copied as is,
// so the original bytes of an event travel unchanged.
func AppendEventJSON(dst []byte, e *Event) []byte {
	dst = append(dst, `{"stream":`...)
	dst = AppendJSONString(dst, e.Stream)
	dst = append(dst, `,"event_id":`...)
	dst = AppendJSONString(dst, e.EventID)
	dst = append(dst, `,"event_time":"`...)
	dst = e.EventTime.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","entity":`...)
	dst = AppendJSONString(dst, e.Entity)
	dst = append(dst, `,"schema_version":`...)
	dst = strconv.AppendInt(dst, int64(e.SchemaVersion), 10)
	dst = append(dst, `,"ingested_at":"`...)
	dst = e.IngestedAt.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","data":`...)
	dst = append(dst, e.Data...)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD, as in
// encoding/json.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
