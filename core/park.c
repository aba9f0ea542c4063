/*
 * park.c - the futex system calls behind park.h.
 */
#include "park.h"

#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

_Atomic int sb_parker_asymmetric_;

static pthread_once_t asymmetric_once = PTHREAD_ONCE_INIT;
static int asymmetric_result = -ENOSYS;

static long membarrier(int cmd)
{
    return syscall(SYS_membarrier, cmd, 0u, 0);
}

static void asymmetric_register(void)
{
    long cmds = membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds < 0) {
        asymmetric_result = -errno;
        return;
    }
    if (!(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) {
        asymmetric_result = -ENOSYS;
        return;
    }
    if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0) {
        asymmetric_result = -errno;
        return;
    }
    asymmetric_result = 0;
    /* Relaxed: see sb_parker_asymmetric_ in park.h. */
    atomic_store_explicit(&sb_parker_asymmetric_, 1, memory_order_relaxed);
}

int sb_parker_asymmetric_setup(void)
{
    pthread_once(&asymmetric_once, asymmetric_register);
    return asymmetric_result;
}

int sb_parker_prepare_heavy(struct sb_parker *pk)
{
    sb_parker_prepare(pk);
    if (!sb_parker_asymmetric())
        return 0;
    /* Pairs with sb_parker_wake_light()'s compiler barrier: a full barrier on every CPU that
     * runs one of our threads, after the exchange above was made visible (membarrier begins
     * and ends with a full barrier on this CPU). */
    return membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0 ? 0 : -errno;
}

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
