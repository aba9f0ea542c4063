/*
 * data_dir.c - the bus's folder: lock, topics file, partition logs; see data_dir.h.
 */
#include "data_dir.h"

#include "report.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOPICS_FILE "topics"
#define TOPICS_HEADER "shardbus-topics 1"


/* Reports go to the bus's log_fn. */
#define dir_report(bus, level, ...) sb_report((bus)->cfg.log_fn, (bus)->cfg.log_ctx, level, __VA_ARGS__)

static void log_config_for(const struct sb_bus *bus, const struct sb_topic *topic,
                           struct sb_log_config *lc)
{
    sb_log_config_init(lc);
    lc->segment_bytes = bus->cfg.segment_bytes;
    lc->retention_bytes = topic->cfg.retention_bytes;
    lc->retention_ms = topic->cfg.retention_ms;
    /* -1: direct where syncs wait for the writes (sb_config.direct_io). */
    lc->direct_io = bus->cfg.direct_io > 0 ||
                    (bus->cfg.direct_io < 0 && bus->cfg.durability != SB_DURABILITY_NONE);
}

static int open_partition_logs(struct sb_bus *bus, struct sb_topic *topic)
{
    struct sb_log_config lc;
    struct sb_log_reporter rep = {bus->cfg.log_fn, bus->cfg.log_ctx};
    log_config_for(bus, topic, &lc);
    for (uint32_t p = 0; p < topic->partition_count; p++) {
        int rc = sb_plog_open(bus->cfg.data_dir, topic->name, p, &lc, &rep,
                              &topic->partitions[p].plog);
        if (rc)
            return rc; /* logs opened so far are closed with the topic */
    }
    return 0;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

/* Rewrite the topics file: every published topic plus @extra, atomically (temp + rename). */
static int write_topics_file(struct sb_bus *bus, const struct sb_topic *extra)
{
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", bus->cfg.data_dir, TOPICS_FILE);
    snprintf(path, sizeof(path), "%s/%s", bus->cfg.data_dir, TOPICS_FILE);
    FILE *f = fopen(tmp, "we");
    if (!f)
        return -errno;
    fprintf(f, "%s\n", TOPICS_HEADER);
    for (uint32_t id = 0; id < SB_MAX_TOPICS; id++) {
        const struct sb_topic *t = sb_topic_by_id(&bus->topics, id);
        if (!t)
            t = extra, extra = NULL;
        if (!t)
            break;
        if (sb_topic_is_deleted(t))
            continue;
        fprintf(f, "%s %u %" PRId64 " %" PRId64 "\n", t->name, t->partition_count,
                t->cfg.retention_bytes, t->cfg.retention_ms);
    }
    int rc = 0;
    if (fflush(f) || fdatasync(fileno(f)))
        rc = -errno;
    if (fclose(f) && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path))
        rc = -errno;
    if (!rc)
        rc = fsync_path(bus->cfg.data_dir);
    return rc;
}

int sb_data_dir_prepare_topic(struct sb_topic *topic, void *ctx)
{
    struct sb_bus *bus = ctx;
    int rc = open_partition_logs(bus, topic);
    if (!rc)
        rc = write_topics_file(bus, topic);
    return rc;
}

/* Remove folder @dir and the files in it (a partition's folder has no subfolders). */
static int remove_folder(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) && !rc)
            rc = -errno;
    }
    closedir(d);
    if (rmdir(dir) && !rc)
        rc = -errno;
    return rc;
}

/* "<data_dir>/<topic>-<partition>" and its name while it is being deleted. */
static void partition_dirs(const struct sb_bus *bus, const char *topic, uint32_t partition,
                           char *dir, char *gone, size_t size)
{
    snprintf(dir, size, "%s/%s-%u", bus->cfg.data_dir, topic, partition);
    snprintf(gone, size, "%s/%s-%u.deleted", bus->cfg.data_dir, topic, partition);
}

int sb_data_dir_retire_partition(struct sb_bus *bus, struct sb_plog *plog)
{
    /* Renamed out of the way (one atomic step), not removed: until the topics file no longer
     * lists the topic, a crash must find the log (sb_data_dir_open() renames it back). */
    char dir[4096], gone[4096];
    partition_dirs(bus, plog->topic, plog->partition, dir, gone, sizeof(dir));
    remove_folder(gone); /* a leftover of an earlier deletion of the same name */
    int rc = rename(dir, gone) ? -errno : 0;
    sb_plog_close(plog);
    return rc;
}

int sb_data_dir_commit_delete(struct sb_bus *bus, const struct sb_topic *topic)
{
    /* The renames reach the disk before the topics file drops the topic: a crash in between
     * finds the logs under their ".deleted" names and restores them. */
    int rc = fsync_path(bus->cfg.data_dir);
    if (!rc)
        rc = write_topics_file(bus, NULL); /* fdatasync'ed, renamed, the folder fsync'ed */
    if (rc)
        return rc; /* the logs stay under ".deleted": the next open restores them */
    /* Committed: the folders may go (a crash meanwhile leaves them to the next open). */
    for (uint32_t p = 0; p < topic->partition_count; p++) {
        char dir[4096], gone[4096];
        partition_dirs(bus, topic->name, p, dir, gone, sizeof(dir));
        int r = remove_folder(gone);
        if (r && !rc)
            rc = r;
    }
    return rc;
}

/* A deletion a crash interrupted before it was committed (the topics file still lists the
 * topic): put @topic's partition folders found under their ".deleted" names back. */
static void restore_uncommitted_delete(struct sb_bus *bus, const char *topic, uint32_t partitions)
{
    for (uint32_t p = 0; p < partitions; p++) {
        char dir[4096], gone[4096];
        struct stat st;
        partition_dirs(bus, topic, p, dir, gone, sizeof(dir));
        if (stat(gone, &st) != 0 || stat(dir, &st) == 0)
            continue;
        int rc = rename(gone, dir) ? -errno : 0;
        dir_report(bus, rc ? SB_LOG_ERROR : SB_LOG_WARN,
                   "topic %s partition %u: a deletion interrupted before the topics file dropped "
                   "the topic: %s%s",
                   topic, p, rc ? "cannot restore its log: " : "its log is restored",
                   rc ? strerror(-rc) : "");
    }
}

/* Folders left by a deletion a crash interrupted. */
static void clear_deleted_folders(struct sb_bus *bus)
{
    DIR *d = opendir(bus->cfg.data_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 8 && !strcmp(e->d_name + n - 8, ".deleted")) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", bus->cfg.data_dir, e->d_name);
            int rc = remove_folder(path);
            dir_report(bus, rc ? SB_LOG_WARN : SB_LOG_INFO, "%s: leftover of a deleted topic %s%s",
                       path, rc ? "could not be removed: " : "removed",
                       rc ? strerror(-rc) : "");
        }
    }
    closedir(d);
}

/* Reload the topics file (absent: a new folder). */
static int load_topics(struct sb_bus *bus)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", bus->cfg.data_dir, TOPICS_FILE);
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? 0 : -errno;
    char line[512];
    int rc = 0, lineno = 0;
    while (!rc && fgets(line, sizeof(line), f)) {
        lineno++;
        line[strcspn(line, "\n")] = 0;
        if (lineno == 1) {
            if (strcmp(line, TOPICS_HEADER)) {
                dir_report(bus, SB_LOG_ERROR, "%s: not a shardbus topics file (first line \"%s\")",
                           path, line);
                rc = -EBADMSG;
            }
            continue;
        }
        char name[SB_TOPIC_NAME_MAX + 2];
        unsigned partitions;
        long long retention_bytes, retention_ms;
        if (sscanf(line, "%250s %u %lld %lld", name, &partitions, &retention_bytes,
                   &retention_ms) != 4) {
            dir_report(bus, SB_LOG_ERROR, "%s line %d: malformed: \"%s\"", path, lineno, line);
            rc = -EBADMSG;
            break;
        }
        struct sb_topic *topic = NULL;
        struct sb_topic_config tc = {retention_bytes, retention_ms};
        /* No prepare hook: the file already lists it; open its logs right after. */
        rc = sb_topic_table_add(&bus->topics, name, partitions, &tc, &topic);
        if (rc) {
            dir_report(bus, SB_LOG_ERROR, "%s line %d: topic \"%s\": %s", path, lineno, name,
                       strerror(-rc));
            break;
        }
        restore_uncommitted_delete(bus, name, partitions);
        rc = open_partition_logs(bus, topic);
        if (rc)
            dir_report(bus, SB_LOG_ERROR, "topic \"%s\": opening its log: %s", name,
                       strerror(-rc));
    }
    fclose(f);
    return rc;
}

int sb_data_dir_open(struct sb_bus *bus)
{
    const char *dir = bus->cfg.data_dir;
    if (mkdir(dir, 0755) && errno != EEXIST)
        return -errno;
    char path[4096];
    snprintf(path, sizeof(path), "%s/.lock", dir);
    bus->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (bus->lock_fd < 0)
        return -errno;
    if (flock(bus->lock_fd, LOCK_EX | LOCK_NB)) {
        int err = errno;
        close(bus->lock_fd);
        bus->lock_fd = -1;
        if (err == EWOULDBLOCK) {
            dir_report(bus, SB_LOG_ERROR, "%s is in use by another shardbus bus or server", dir);
            return -EBUSY;
        }
        return -err;
    }
    /* Topics first: a deletion the topics file does not show was not committed, and its
     * folders are restored; the ".deleted" folders left after that go. */
    int rc = load_topics(bus);
    if (!rc)
        clear_deleted_folders(bus);
    return rc;
}

void sb_data_dir_close(struct sb_bus *bus)
{
    for (uint32_t id = 0; id < SB_MAX_TOPICS; id++) {
        struct sb_topic *t = sb_topic_by_id(&bus->topics, id);
        if (!t)
            break;
        for (uint32_t p = 0; p < t->partition_count; p++) {
            struct sb_plog *plog = t->partitions[p].plog;
            if (!plog)
                continue;
            /* The direct padding goes now, while the lock is held: a cut after another process
             * opened the folder could remove its events. The sync below covers the cut. */
            const int cut = sb_plog_end_direct(plog);
            if (cut)
                dir_report(bus, SB_LOG_WARN, "%s partition %u: cannot cut the direct padding "
                           "(recovery will): %s", t->name, p, strerror(-cut));
            /* Clean close: everything written is synced, whatever the durability setting. */
            int rc = 0;
            for (size_t s = 0; s < plog->segment_count && !rc; s++)
                if (fdatasync(plog->segments[s].log_fd))
                    rc = -errno;
            if (!rc)
                rc = sb_plog_write_recovery_point(plog, plog->next_offset);
            if (rc)
                dir_report(bus, SB_LOG_WARN, "%s partition %u: recovery point not written: %s",
                           t->name, p, strerror(-rc));
        }
    }
    if (bus->lock_fd >= 0) {
        close(bus->lock_fd); /* releases the flock */
        bus->lock_fd = -1;
    }
}
