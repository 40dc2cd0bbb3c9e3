package gormstore

import (
	"context"
	"log/slog"
	"time"

	gormlogger "gorm.io/gorm/logger"
	"gorm.io/gorm/utils"
)

// slowQuery is the duration above which a statement is reported.
const slowQuery = 200 * time.Millisecond

// gormLogger routes GORM's messages to slog at warn level and reports slow
// statements by call site only: GORM renders SQL with its parameters
// inlined, and those may be password or key hashes, so SQL text and
// message arguments are never logged.
type gormLogger struct{ log *slog.Logger }

func newGormLogger(log *slog.Logger) gormlogger.Interface { return gormLogger{log: log} }

func (l gormLogger) LogMode(gormlogger.LogLevel) gormlogger.Interface { return l }

func (l gormLogger) Info(context.Context, string, ...any) {}

func (l gormLogger) Warn(ctx context.Context, msg string, _ ...any) {
	l.log.WarnContext(ctx, "gorm warning", "message", msg)
}

// Error is silent: every statement error is returned to the caller, who
// decides whether it is worth a log line.
func (l gormLogger) Error(context.Context, string, ...any) {}

func (l gormLogger) Trace(ctx context.Context, begin time.Time, _ func() (string, int64), _ error) {
	if elapsed := time.Since(begin); elapsed > slowQuery {
		l.log.WarnContext(ctx, "slow database statement", "elapsed", elapsed, "caller", utils.FileWithLineNum())
	}
}
