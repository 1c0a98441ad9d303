#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char log_component[32] = "skiff";
static enum log_level log_min_level = LOG_INFO;

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *component)
{
	snprintf(log_component, sizeof(log_component), "%s", component);
}

void log_set_level(enum log_level level) { log_min_level = level; }

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
	if (level < log_min_level)
		return;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s %s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, log_level_names[level], log_component,
			 event);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 2;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	while (len > 0 && line[len - 1] == ' ')
		len--;
	line[len++] = '\n';
	/* One write(2) per line so lines from different processes never interleave. */
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

const char *log_quote(char *buf, size_t buf_len, const char *s)
{
	size_t o = 0;
	if (buf_len < 3) {
		if (buf_len)
			buf[0] = 0;
		return buf;
	}
	buf[o++] = '"';
	for (; *s && o + 3 < buf_len; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20) {
			buf[o++] = '?';
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o++] = '"';
	buf[o] = 0;
	return buf;
}
