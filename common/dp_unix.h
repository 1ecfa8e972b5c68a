/*
 * dp_unix.h - local (unix) stream sockets the way Deskpool's daemons make
 * them: listening sockets only their owner may use, and plain connects.
 */
#ifndef DP_UNIX_H
#define DP_UNIX_H

/*
 * Listens at path: removes a socket a killed process left there, binds,
 * makes it mode 0600 (owner only) and listens with backlog. flags are
 * extra socket() type flags (SOCK_NONBLOCK). Returns the descriptor
 * (close-on-exec) or a negative errno (-ENAMETOOLONG for a path that does
 * not fit).
 */
int dp_unix_listen(const char *path, int backlog, int flags);

/* Connects to path (blocking; local connects do not wait). Returns the
 * descriptor (close-on-exec) or a negative errno. */
int dp_unix_connect(const char *path);

#endif
