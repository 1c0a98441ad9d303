/* File descriptors every worker inherits from skiffd at fixed numbers.
 * The supervisor creates the memfds and eventfds once, keeps them open for
 * its whole life (so a ring outlives the restart of either side) and dup2()s
 * them to these numbers between fork() and exec(). Anything else is closed. */
#ifndef SK_IPC_FDS_H
#define SK_IPC_FDS_H

#define SK_FD_READY 3            /* pipe, write end: the worker writes "ready\n" once */
#define SK_FD_STATUS_PAGE 4      /* memfd: struct sk_status_page */
#define SK_FD_INGRESS_RING 5     /* memfd: ring, producer http, consumer writer */
#define SK_FD_COMPLETION_RING 6  /* memfd: ring, producer writer, consumer http */
#define SK_FD_INGRESS_DATA 7     /* eventfd: http -> writer, records waiting */
#define SK_FD_INGRESS_SPACE 8    /* eventfd: writer -> http, space freed */
#define SK_FD_COMPLETION_DATA 9  /* eventfd: writer -> http, completions waiting */
#define SK_FD_COMPLETION_SPACE 10 /* eventfd: http -> writer, space freed */
#define SK_FD_DURABLE 11         /* eventfd: writer -> raft, durable index moved */
#define SK_FD_COMMIT_HTTP 12     /* eventfd: raft -> http, commit index moved */
#define SK_FD_FIRST_FREE 13      /* first fd number a worker may open freely */

#endif
