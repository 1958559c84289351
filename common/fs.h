/* fs.h — files and directories that appear whole or not at all.
 * Outputs are written to a temporary sibling (same directory, so rename(2)
 * is atomic), fsynced, then renamed over the target; the directory is
 * fsynced after. Files are written to an unnamed O_TMPFILE inode where the
 * file system has it, so even SIGKILL mid-write leaves nothing behind. Directories are built under a temporary sibling and
 * swapped in with renameat2(RENAME_EXCHANGE) where the kernel has it.
 * Paths returned by fs_* functions are malloc'd; the caller frees them. */
#ifndef ISOPIPE_FS_H
#define ISOPIPE_FS_H
#include <stdio.h>
#include <sys/types.h>

int fs_mkdir_p(const char *path);
int fs_exists(const char *path);
int fs_is_dir(const char *path);
int fs_rm_rf(const char *path);

/* "dir/.name.tmp-PID-RAND" beside final (malloc'd) */
char *fs_tmp_sibling(const char *final);

/* Remove temporary siblings of final (".<base>.tmp-<pid>-*", files or
 * directories) whose process no longer exists: what a run killed with
 * SIGKILL left behind. fs_write_atomic and fs_dir_begin call it; a tool
 * that writes to fs_tmp_sibling() itself may too. Returns how many went. */
int fs_clean_stale_tmp(const char *final);
/* the same for every output in dir: removes each ".NAME.tmp-PID-XXXXXXXX"
 * whose process is gone; returns how many */
int fs_sweep_stale_tmp(const char *dir);
/* 1 when pid names no running process: absent, or a zombie (a kill -9'ed
 * process that nobody reaped yet, which will never write again) */
int fs_pid_gone(long pid);

/* Write a file atomically: writer(f, ctx) fills the temp file; on its
 * success (0) the file is fsynced and renamed to path; on failure it is
 * removed and the writer's status returned. */
int fs_write_atomic(const char *path, int (*writer)(FILE *f, void *ctx), void *ctx);
/* fsync tmp, rename to final, fsync the directory */
int fs_publish_file(const char *tmp, const char *final);

/* Directory outputs: fs_dir_begin creates an empty temporary sibling of
 * final (its path in *tmp); fs_dir_publish swaps it in (an old final is
 * removed after); fs_dir_abort removes it. fs_dir_begin refuses (73) a
 * final that exists and is anything but an empty directory: a tool replaces
 * only what it wrote itself, which fs_dir_begin_owned recognises. */
int fs_dir_begin(const char *final, char **tmp);

/* What a tool's output directory holds, so a re-run may replace it and
 * nothing else: `marker` is the JSON it writes there (its "tool" field is
 * `tool`), `names` the other entries it writes (fnmatch patterns,
 * NULL-terminated). `inputs` (n_inputs, NULL entries skipped) are what the
 * run reads: the output may neither be one nor contain one. */
struct fs_dir_owner {
    const char *marker;
    const char *tool;
    const char *const *names;
    const char *const *inputs;
    int n_inputs;
};
/* fs_dir_begin, but an existing final is replaced only when it is an
 * output of own->tool (73 otherwise, naming what is in the way). */
int fs_dir_begin_owned(const char *final, const struct fs_dir_owner *own, char **tmp);
/* fs_dir_begin for a caller that has already decided, by rules of its own,
 * that final may be replaced (vae decode into a segment directory it keeps
 * the segment's files of) */
int fs_dir_begin_checked(const char *final, char **tmp);
/* the same checks alone, creating nothing: a tool calls it before any work */
int fs_dir_check_owned(const char *final, const struct fs_dir_owner *own);
/* 73 when output equals an input or is a directory containing one (by
 * real path, so links and "a/../b" spellings are seen through);
 * `what` names the output in the message ("-o") */
int fs_check_output(const char *output, const char *what, const char *const *inputs, int n_inputs);

/* Open an input for reading without ever blocking on it: a FIFO, a device
 * or a socket is refused at once (65, "not a regular file"), a missing
 * file is 66. fs_open_input gives a blocking fd (O_CLOEXEC), fs_fopen_input
 * a FILE. Every reader of user files (PNG, topic, GGUF, safetensors, .flo,
 * JSON) goes through one of them. */
int fs_open_input(const char *path, int *fd);
int fs_fopen_input(const char *path, FILE **f);
/* 0 when path is absent, a directory or a regular file; 65 for a special file */
int fs_check_not_special(const char *path);
int fs_dir_publish(const char *tmp, const char *final);
void fs_dir_abort(char **tmp);

/* the directory part of path ("." when none), malloc'd */
char *fs_dirname(const char *path);
/* path joined to dir ("dir/name"), malloc'd */
char *fs_join(const char *dir, const char *name);
/* rel resolved against the directory of base_file (absolute rel is kept) */
char *fs_resolve(const char *base_file, const char *rel);
/* target expressed relative to the directory of from_file (for JSON paths) */
char *fs_relative(const char *from_file, const char *target);
/* fsync a directory */
int fs_sync_dir(const char *dir);
/* whole file into memory (NUL-terminated; *len without the NUL) */
int fs_read_all(const char *path, char **data, size_t *len, size_t max);
#endif
