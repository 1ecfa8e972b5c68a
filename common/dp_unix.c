/*
 * dp_unix.c - local stream sockets (see dp_unix.h).
 */
#include "dp_unix.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int dp_unix_addr(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return -ENAMETOOLONG;
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

int dp_unix_listen(const char *path, int backlog, int flags)
{
    struct sockaddr_un sa;
    int fd, err = dp_unix_addr(&sa, path);

    if (err)
        return err;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
    if (fd < 0)
        return -errno;
    unlink(path);
    /* chmod after bind, not umask: umask is the whole process's, and
     * other threads create files meanwhile */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        chmod(path, 0600) < 0 || listen(fd, backlog) < 0) {
        err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int dp_unix_connect(const char *path)
{
    struct sockaddr_un sa;
    int fd, err = dp_unix_addr(&sa, path);

    if (err)
        return err;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        err = -errno;
        close(fd);
        return err;
    }
    return fd;
}
