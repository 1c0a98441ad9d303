/* One line per event on stderr:
 *   2026-11-22T02:00:00.123Z info  writer ready pid=123 durable_index=7
 * time (UTC, ms), level, component, event, then key=value fields. Values that
 * contain spaces or quotes are written quoted by the caller via log_quote(). */
#ifndef SK_LOG_H
#define SK_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Name the component ("supervisor", "writer", ...) that prefixes every line. */
void log_init(const char *component);
/* Lines below level are dropped. */
void log_set_level(enum log_level level);
/* Write one line: event is one word; fmt (printf) produces the key=value fields. */
void log_event(enum log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Quote s for a key=value field into buf (bounded; always NUL-terminated). */
const char *log_quote(char *buf, size_t buf_len, const char *s);

#define log_info(ev, ...) log_event(LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_event(LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_event(LOG_ERROR, ev, __VA_ARGS__)
#define log_debug(ev, ...) log_event(LOG_DEBUG, ev, __VA_ARGS__)

#endif
