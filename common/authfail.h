/*
 * authfail.h - failed authentications per client network, for the
 * growing delays and the lockout every daemon applies (DESIGN.md:
 * "auth failures -> growing delays").
 *
 * A client network is an IPv4 address, or the /64 prefix of an IPv6
 * address (one customer's LAN; IPv4-mapped addresses count as IPv4).
 * For each one the table keeps:
 *  - a streak of failures since the last success, which sets the delay
 *    to impose before answering a failure: none for the first, then
 *    delay_first_ms doubling up to delay_max_ms (1, 2, 4, 8, 15 s).  The
 *    streak ends with a success or after lockout_window without failure.
 *  - the failures of the last lockout_window seconds, counted in
 *    AUTHFAIL_BUCKETS-1 time buckets (so a failure is remembered between
 *    lockout_window and lockout_window * 16/15 seconds); when they reach
 *    lockout_failures, the network is refused for lockout_time seconds.
 *    A success does not clear them: one valid account must not buy an
 *    attacker more guesses at other accounts.
 *
 * Pure logic: no I/O, no logging; time comes from an injected monotonic
 * clock.  Memory is fixed at creation (entries slots); when full, the
 * network whose last failure is oldest is forgotten.  Every call is O(1)
 * (a keyed hash, so clients cannot choose colliding addresses).  A table
 * belongs to one thread (the event loop); each daemon process has its own.
 *
 * Use: before checking credentials, authfail_locked() (refuse while it is
 * non-zero, without checking); on a failed check, wait authfail_failure()
 * milliseconds before answering; on success, authfail_success().
 */
#ifndef BUZON_AUTHFAIL_H
#define BUZON_AUTHFAIL_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;
struct authfail;

#define AUTHFAIL_BUCKETS 16

struct authfail_limits {
	unsigned entries;		/* networks remembered */
	unsigned lockout_failures;	/* failures in the window; 0: never */
	unsigned lockout_window;	/* seconds */
	unsigned lockout_time;		/* seconds refused */
	unsigned delay_first_ms;	/* delay after the second failure */
	unsigned delay_max_ms;		/* cap of the doubling */
};

#define AUTHFAIL_LIMITS_DEFAULT { 4096, 20, 900, 900, 1000, 15000 }

/* Seconds from any fixed origin; must never go backwards. */
typedef uint64_t authfail_clock_fn(void *arg);

/*
 * lim NULL: AUTHFAIL_LIMITS_DEFAULT.  clock NULL: CLOCK_MONOTONIC.
 * NULL on a nonsensical limit (entries 0 or above 1<<24, window or
 * lockout_time 0 with lockout on, delay_first_ms > delay_max_ms) or
 * when out of memory.
 */
struct authfail *authfail_new(const struct authfail_limits *lim,
    authfail_clock_fn *clock, void *clock_arg);
void authfail_free(struct authfail **tp);

/*
 * Seconds the client's network stays refused (0: not locked out).
 * Addresses that are neither AF_INET nor AF_INET6 are never tracked:
 * they get 0 here and from authfail_failure().
 */
unsigned authfail_locked(struct authfail *t, const struct sockaddr *sa);

/* Record a failure; returns the delay (ms) to wait before answering it. */
unsigned authfail_failure(struct authfail *t, const struct sockaddr *sa);

/* Record a success: ends the delay streak (the lockout count stays). */
void authfail_success(struct authfail *t, const struct sockaddr *sa);

/* The delay (ms) the current streak calls for, without recording. */
unsigned authfail_delay(struct authfail *t, const struct sockaddr *sa);

/* Networks currently remembered (at most limits.entries). */
size_t authfail_count(const struct authfail *t);

#endif
