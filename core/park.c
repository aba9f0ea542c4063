/*
 * park.c - the futex system calls behind park.h.
 */
#include "park.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int sb_parker_wait(struct sb_parker *pk, int64_t timeout_ns)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    /* FUTEX_WAIT returns at once (EAGAIN) when a waker already cleared the flag. */
    long rc = syscall(SYS_futex, &pk->parked, FUTEX_WAIT_PRIVATE, 1u, tsp, NULL, 0);
    int err = rc == 0 ? 0 : errno;
    /* Relaxed: only this thread sets the flag to 1; see sb_parker_cancel(). */
    atomic_store_explicit(&pk->parked, 0, memory_order_relaxed);
    if (err == ETIMEDOUT)
        return -ETIMEDOUT;
    if (err == EINTR)
        return -EINTR;
    return 0;
}

void sb_parker_wake_slow(struct sb_parker *pk)
{
    /* Only the waker that turns 1 into 0 makes the system call. Relaxed would do for the
     * value; acq_rel keeps the reasoning simple on this rare path. */
    if (atomic_exchange_explicit(&pk->parked, 0, memory_order_acq_rel) == 1) {
        syscall(SYS_futex, &pk->parked, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        if (pk->eventfd >= 0) {
            uint64_t one = 1;
            ssize_t n = write(pk->eventfd, &one, sizeof(one));
            (void)n; /* a full counter (EAGAIN) still wakes the reader */
        }
    }
}
