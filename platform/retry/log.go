package retry

import (
	"math/bits"
	"time"

	"go.uber.org/zap"
)

// Logged returns a Notify that logs an outage without flooding the log: the first failure
// and then attempts 2, 4, 8, ... at warn with the error and no stack trace; the rest at debug.
// A dependency down for an hour thus costs about a dozen lines, not thousands.
func Logged(log *zap.Logger, msg string, fields ...zap.Field) Notify {
	return func(attempt int, err error, wait time.Duration) {
		level := zap.DebugLevel
		if bits.OnesCount(uint(attempt)) == 1 {
			level = zap.WarnLevel
		}
		if ce := log.Check(level, msg); ce != nil {
			ce.Write(append(fields, zap.Int("attempt", attempt), zap.Duration("retry_in", wait), zap.String("error", err.Error()))...)
		}
	}
}
