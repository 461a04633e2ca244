// Package logging owns how UPU writes logs: the one helper every component
// logs through, so that all of a node's logs share one format, one set of
// field names and one meaning per level (DESIGN.md section 8).
//
// # Levels
//
// Each level means one thing, project-wide:
//
//   - fatal: the process cannot go on and exits. At most once per life.
//   - error: the server failed a user, and someone must act (a write could
//     not be stored, a disk is full, an invariant broke).
//   - warn: may become an error if nobody looks: a peer unreachable, a slow
//     operation, relay lag, a disk filling up.
//   - info: lifecycle and state changes: start-up (with the whole effective
//     configuration), shutdown, member join/leave/fail, relay takeover,
//     cascade change, partition seen and healed.
//   - debug: the steps of each request. Turn it on for one node at a time.
//
// A caller's mistake (a bad request, a missing key, a value too large, a
// bad token) is never error, nor warn: the caller gets a clear reply, and
// the log gets at most a debug line. A cache miss is not a warning. This
// package deliberately offers no helper that logs a request's error.
//
// # Format and fields
//
// Entries are logfmt text (key=value, the default) or one JSON object per
// line, with UTC timestamps to the microsecond. Field names are the
// constants below; in text, the time, level and message come first, then
// node, domain, component, req_id, op, duration_ms, then (in audit entries)
// actor, action, before, after, then the rest sorted.
// Build one entry per component with [Logger.Component] and keep it;
// add req_id (a reqid.ID renders as its 32 hex digits) with WithField.
// Error values go under [FieldError] ("error"), which is what logrus's
// WithError uses. Entries print the warn level as "warning", logrus's
// spelling; SetLevel accepts both.
//
// Durations are milliseconds as a decimal number, in [FieldDuration]
// ("duration_ms=12.5"): wrap a time.Duration in [Millis]. Keys go under
// [FieldKey] through [Key], which cuts long keys and hex-encodes binary
// ones.
//
// # Files
//
// With Config.Dir empty, everything goes to stderr. With a Dir:
//
//   - upu.log: every entry at or above the level, copied to stderr too
//     unless Config.Quiet;
//   - error.log: warn, error and fatal entries again, alone: what may need
//     someone, without the routine;
//   - audit.log: admin operations with the values before and after,
//     written whatever the level (see [Logger.Audit]).
//
// Each file is rotated when it would pass Config.MaxSizeMB and, if it has
// anything in it, every Config.RotateEvery; rotated files are kept for
// Config.MaxAgeDays and at most Config.MaxBackups of them.
//
// # Slow operations
//
// [Logger.Slow] logs an operation's duration at warn when it reaches the
// slow threshold and at debug otherwise. The threshold, like the level,
// can be changed while the node runs.
package logging
