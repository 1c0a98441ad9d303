/* sd_notify protocol (sup_notify.h). */
#include "supervisor/sup_notify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static void notify_watchdog(struct sup_notify *n)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	if (!usec)
		return;
	/* WATCHDOG_PID names the process that must ping; it is not us when it is set otherwise. */
	if (pid && strtol(pid, NULL, 10) != (long)getpid())
		return;
	char *end;
	errno = 0;
	unsigned long long us = strtoull(usec, &end, 10);
	if (errno != 0 || *end != 0 || us < 2000) {
		log_warn("notify", "bad_watchdog_usec=%.32s", usec);
		return;
	}
	n->watchdog_ms = us / 2000; /* half the interval, in ms */
}

void sup_notify_init(struct sup_notify *n)
{
	memset(n, 0, sizeof(*n));
	n->fd = -1;
	const char *path = getenv("NOTIFY_SOCKET");
	if (path && *path) {
		size_t len = strlen(path);
		if ((path[0] != '/' && path[0] != '@') || len >= sizeof(n->addr.sun_path)) {
			log_warn("notify", "bad_notify_socket=%.64s", path);
		} else {
			n->addr.sun_family = AF_UNIX;
			memcpy(n->addr.sun_path, path, len);
			if (path[0] == '@')
				n->addr.sun_path[0] = 0; /* abstract namespace */
			n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
			n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			if (n->fd >= 0)
				notify_watchdog(n);
		}
	}
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

void sup_notify_send(struct sup_notify *n, const char *msg)
{
	if (n->fd < 0)
		return;
	ssize_t w = sendto(n->fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&n->addr,
			   n->addr_len);
	if (w < 0)
		log_debug("notify_failed", "errno=%d", errno);
}

void sup_notify_close(struct sup_notify *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
	n->watchdog_ms = 0;
}
