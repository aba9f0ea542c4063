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
 *
 * The hottest waker, a producer waking its shard after every publish, can skip the full
 * barrier that seq_cst costs it (the wait for its store buffer to drain, about a cache-line
 * transfer per event): when the process could register for membarrier(2)'s private expedited
 * command (sb_parker_asymmetric_setup()), the shard parks with sb_parker_prepare_heavy(),
 * whose membarrier() runs a full barrier on every CPU running a thread of the process, and the
 * producer publishes with a release store and reads the flag relaxed, separated only by a
 * compiler barrier (sb_parker_wake_light()). Either the producer's barrier-free sequence ran
 * wholly before that barrier on its CPU (its record is visible to the shard's re-check) or its
 * load of the flag ran after it (and sees the flag, stored before the membarrier). This is the
 * pattern of membarrier(2)'s manual page. Every other waker keeps the seq_cst protocol, which
 * the heavy prepare also serves.
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

/**
 * sb_parker_asymmetric_setup - register the process for membarrier(2)'s private expedited
 * command, once (later calls return the first result). Returns 0 when light wakers may be used
 * (sb_parker_asymmetric() is then true), or the negative errno of the registration (the
 * kernel lacks it, or a seccomp filter forbids it: then everyone keeps the seq_cst protocol).
 * Any thread; call before any parker that light wakers wake is used.
 */
int sb_parker_asymmetric_setup(void);

/* Set once by sb_parker_asymmetric_setup() (under pthread_once), before any light waker or
 * heavy parker exists, and never changed: read relaxed (no ordering is needed, the thread
 * creation that follows it orders it). */
extern _Atomic int sb_parker_asymmetric_;

/** True when light wakers may be used (see the top of this file). Any thread. */
static inline int sb_parker_asymmetric(void)
{
    return atomic_load_explicit(&sb_parker_asymmetric_, memory_order_relaxed);
}

/**
 * sb_parker_prepare_heavy - sb_parker_prepare() for a parker that light wakers wake: also runs
 * membarrier() when sb_parker_asymmetric(). Owner thread; follow with the seq_cst re-check.
 * Returns 0, or a negative errno when the membarrier failed (out of memory in the kernel): a
 * light waker's publication may then be missed, so the caller must bound its sleep.
 */
int sb_parker_prepare_heavy(struct sb_parker *pk);

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

/**
 * sb_parker_wake_light - wake the owner if it parked, after publishing work with a plain
 * release store, when sb_parker_asymmetric() is true and the owner parks with
 * sb_parker_prepare_heavy(). Any thread. Never blocks.
 */
static inline void sb_parker_wake_light(struct sb_parker *pk)
{
    /* A compiler barrier only: the load must not be moved before the publishing store by the
     * compiler; the CPU's StoreLoad ordering is provided by the owner's membarrier() (see the
     * top of this file). Relaxed: pairs with the owner's exchange in sb_parker_prepare_heavy()
     * through that membarrier. */
    atomic_signal_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&pk->parked, memory_order_relaxed))
        sb_parker_wake_slow(pk);
}

#endif /* SB_PARK_H */
