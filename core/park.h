/*
 * park.h - parking a thread on a futex until another thread has work for it.
 *
 * The waiter announces itself with sb_parker_prepare() (a seq_cst exchange), then re-checks
 * every source of work with seq_cst loads, and only then sleeps in sb_parker_wait(). A waker
 * first publishes its work with a seq_cst operation (sb_ring_commit_seq_cst(), a seq_cst store
 * of a flag), then calls sb_parker_wake(), whose seq_cst load of the flag pairs with the
 * waiter's exchange: in the single total order of seq_cst operations either the waiter's
 * re-check sees the work or the waker sees the flag, so a wake-up is never lost. The waker pays
 * for a system call only when the waiter actually parked.
 */
#ifndef SB_PARK_H
#define SB_PARK_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cacheline.h"

struct sb_parker {
    /* 1 while the owner is parked or about to park; the futex word. Own cache lines: wakers
     * read it on every commit and it must not share a line with data they write. */
    alignas(SB_CACHE_GUARD) _Atomic uint32_t parked;
    /* When >= 0, wakers also write to this eventfd: an owner sleeping in io_uring (a shard with
     * log writes in flight) waits on it there. Set before any waker exists. */
    int eventfd;
    unsigned char pad[SB_CACHE_GUARD - sizeof(uint32_t) - sizeof(int)];
};

/** sb_cpu_relax - one iteration of a spin-wait: tells the CPU we are spinning (x86 pause). */
static inline void sb_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/** Owner thread: announce the intent to park. Follow with a seq_cst re-check of all work. */
static inline void sb_parker_prepare(struct sb_parker *pk)
{
    /* seq_cst pairs with the waker's seq_cst publication + sb_parker_wake()'s load. */
    atomic_exchange_explicit(&pk->parked, 1, memory_order_seq_cst);
}

/** Owner thread: work was found after sb_parker_prepare(); do not park. */
static inline void sb_parker_cancel(struct sb_parker *pk)
{
    /* Relaxed: the flag only saves wakers a system call; a stale 1 costs one spurious wake. */
    atomic_store_explicit(&pk->parked, 0, memory_order_relaxed);
}

/**
 * sb_parker_wait - sleep until woken or @timeout_ns passes (< 0: no limit). Owner thread only,
 * after sb_parker_prepare() and a re-check that found nothing. Returns 0 when woken (or the flag
 * was already cleared), -ETIMEDOUT, or -EINTR. Clears the flag before returning.
 */
int sb_parker_wait(struct sb_parker *pk, int64_t timeout_ns);

/** sb_parker_wake_slow - the system call half of sb_parker_wake(). */
void sb_parker_wake_slow(struct sb_parker *pk);

/**
 * sb_parker_wake - wake the owner if it parked. Any thread, after publishing its work with a
 * seq_cst operation. Never blocks (one futex system call when the owner is parked).
 */
static inline void sb_parker_wake(struct sb_parker *pk)
{
    /* seq_cst pairs with sb_parker_prepare()'s exchange (see the top of this file). */
    if (atomic_load_explicit(&pk->parked, memory_order_seq_cst))
        sb_parker_wake_slow(pk);
}

#endif /* SB_PARK_H */
