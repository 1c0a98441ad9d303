/* sd_notify without libsystemd: one datagram per message to the unix socket
 * named by NOTIFY_SOCKET ("/path" or "@abstract"). READY=1 once every worker
 * has started, STOPPING=1 when a stop begins, WATCHDOG=1 every
 * WATCHDOG_USEC / 2 from the supervisor's loop (so a stuck loop misses it).
 * The variables are removed from the environment so workers do not inherit
 * them. Everything is a no-op when NOTIFY_SOCKET is unset. */
#ifndef SK_SUP_NOTIFY_H
#define SK_SUP_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

struct sup_notify {
	int fd; /* -1 when off */
	struct sockaddr_un addr;
	socklen_t addr_len;
	uint64_t watchdog_ms; /* interval between WATCHDOG=1, 0 when off */
};

/* Read and unset NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID. A malformed variable
 * turns notification off with a warning (systemd then times us out, visibly). */
void sup_notify_init(struct sup_notify *n);
/* Send one message ("READY=1", "STATUS=..."): best effort, never blocks. */
void sup_notify_send(struct sup_notify *n, const char *msg);
void sup_notify_close(struct sup_notify *n);

#endif
