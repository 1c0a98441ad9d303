/* Every limit in one place, units last (STYLE.md habit 6).
 * INI values are checked against the MIN/MAX pairs here and rejected
 * with file, line and allowed range when outside them; never clamped. */
#ifndef SK_LIMITS_H
#define SK_LIMITS_H

#include <stdint.h>

/* Process tree */
#define SK_WORKER_COUNT 4
#define SK_NODE_ID_MAX 1000000
#define SK_PATH_BYTES_MAX 4096
#define SK_WORKER_READY_TIMEOUT_MS 30000
#define SK_WORKER_HEARTBEAT_MS 100

/* Supervisor policy */
#define SK_SUP_INTENSITY_MIN 1
#define SK_SUP_INTENSITY_MAX 1000
#define SK_SUP_PERIOD_MS_MIN 100
#define SK_SUP_PERIOD_MS_MAX 3600000
#define SK_SUP_BACKOFF_MS_MIN 0
#define SK_SUP_BACKOFF_MS_MAX 600000
#define SK_SUP_STABLE_AFTER_MS_MIN 0
#define SK_SUP_STABLE_AFTER_MS_MAX 3600000
#define SK_SUP_HANG_TIMEOUT_MS_MIN 100
#define SK_SUP_HANG_TIMEOUT_MS_MAX 600000
#define SK_SUP_SHUTDOWN_MS_MIN 10
#define SK_SUP_SHUTDOWN_MS_MAX 600000
#define SK_SUP_HISTORY_ROWS_MAX 10000 /* exit history rows kept in data_dir */

/* Control socket (skiffctl <-> skiffd) */
#define SK_CONTROL_MSG_BYTES_MAX (256 * 1024)
#define SK_CONTROL_TIMEOUT_MS 5000

/* Topics */
#define SK_TOPIC_NAME_BYTES_MAX 128
#define SK_GROUP_NAME_BYTES_MAX 128
#define SK_PARTITIONS_MIN 1
#define SK_PARTITIONS_MAX_MAX 1024 /* upper bound for [http] partitions_max */
#define SK_TOPICS_MAX 4096

/* Records */
#define SK_KEY_BYTES_MAX 1024
#define SK_IDEM_KEY_BYTES_MAX 128

/* HTTP */
#define SK_HTTP_BODY_BYTES_MIN 1024
#define SK_HTTP_BODY_BYTES_MAX_MAX (64 * 1024 * 1024)
#define SK_HTTP_HEADERS_BYTES_MAX (16 * 1024)
#define SK_HTTP_CONNECTIONS_MIN 1
#define SK_HTTP_CONNECTIONS_MAX_MAX 65536
#define SK_HTTP_TIMEOUT_MS_MIN 100
#define SK_HTTP_TIMEOUT_MS_MAX 600000
#define SK_HTTP_BATCH_RECORDS_MIN 1
#define SK_HTTP_BATCH_RECORDS_MAX_MAX 100000
#define SK_HTTP_TOKENS_MAX 64
#define SK_HTTP_TOKEN_BYTES_MAX 256
#define SK_HTTP_WAIT_MS_MAX 60000
#define SK_HTTP_CONSUME_LIMIT_MAX 100000
#define SK_HTTP_CONSUME_BYTES_MAX (64 * 1024 * 1024)
#define SK_IDEMPOTENCY_WINDOW_MS_MIN 1000
#define SK_IDEMPOTENCY_WINDOW_MS_MAX (7LL * 24 * 3600 * 1000)

/* Storage */
#define SK_SEGMENT_BYTES_MIN (1024 * 1024)
#define SK_SEGMENT_BYTES_MAX (4LL * 1024 * 1024 * 1024)
#define SK_FRAME_BYTES_MAX (64 * 1024 * 1024 + 4096) /* one ndjson batch or one value */
#define SK_WRITER_BATCH_RECORDS_MAX 65536          /* ring records taken per group commit */
#define SK_WRITER_BATCH_BYTES_MAX (64 * 1024 * 1024)
#define SK_RETENTION_BYTES_MAX (1LL << 50)
#define SK_RETENTION_MS_MAX (3650LL * 24 * 3600 * 1000)

/* Rings */
#define SK_RING_BYTES_MIN (64 * 1024)
#define SK_RING_BYTES_MAX (1LL << 30)
#define SK_RING_REQUEST_OVERHEAD_BYTES (64 * 1024) /* ingress record = body + this, at most */

#endif
