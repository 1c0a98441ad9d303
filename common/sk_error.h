/* One error enum for the whole code base (STYLE.md habit 3).
 * Functions that act return sk_err; predicates return bool. */
#ifndef SK_ERROR_H
#define SK_ERROR_H

typedef enum sk_err {
	SK_OK = 0,
	SK_EINVAL,     /* bad argument or malformed input */
	SK_EIO,        /* an I/O call failed (errno logged by the caller) */
	SK_ECORRUPT,   /* stored or received bytes fail a check (CRC, magic, length) */
	SK_EFULL,      /* no space: ring full, disk full (ENOSPC) */
	SK_ETIMEDOUT,  /* a deadline passed */
	SK_ENOMEM,     /* allocation failed */
	SK_ENOTFOUND,  /* unknown topic, partition, key, file */
	SK_EEXIST,     /* already exists (with different attributes) */
	SK_ECONFLICT,  /* state conflict: commit moving backwards, term mismatch */
	SK_ERANGE,     /* value outside its allowed range (offset past high watermark, below log start) */
	SK_EAGAIN,     /* nothing ready now; try again */
	SK_EBUSY,      /* held by someone else (lock, running daemon) */
	SK_ECLOSED,    /* peer gone or object shut down */
	SK_EVERSION,   /* unknown version of a message or file */
	SK_ECONFIG,    /* configuration error (exit code 78) */
	SK_ERR_COUNT
} sk_err;

/* Static, human-readable text for an error code; never NULL. */
const char *sk_strerror(sk_err err);
/* Short stable identifier ("einval", "efull", ...) for logs and JSON. */
const char *sk_errname(sk_err err);

#endif
