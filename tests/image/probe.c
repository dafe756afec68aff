/* A probe run in a container of the image by test_image.py (bound in
 * read-only, never part of the image): prints what the process got, one
 * fact per line, so that the test reads the environment, the user and the
 * writable places from inside, not from buildah's word. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static void try_write(const char *dir)
{
    char path[256];
    snprintf(path, sizeof path, "%s/.sauve-probe", dir);
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
    if (fd >= 0) {
        close(fd);
        unlink(path);
        printf("write %s ok\n", dir);
    } else {
        printf("write %s %s\n", dir, strerror(errno));
    }
}

static void status_line(const char *key)
{
    char buf[8192];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    char *p = strstr(buf, key);
    if (p)
        printf("status %.*s\n", (int)strcspn(p, "\n"), p);
}

int main(int argc, char **argv)
{
    printf("uid %d euid %d gid %d egid %d\n", (int)getuid(), (int)geteuid(), (int)getgid(), (int)getegid());
    for (char **e = environ; *e; e++)
        printf("env %s\n", *e);
    for (int i = 1; i < argc; i++)
        try_write(argv[i]);
    status_line("CapEff:");
    status_line("NoNewPrivs:");
    return 0;
}
